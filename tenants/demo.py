"""The demo organisation and logins that `make run` creates."""

from django.conf import settings
from django.db import transaction
from django_tenants.utils import tenant_context

from accounts.models import User
from accounts.services import owner_get_or_create
from billing.models import Plan
from watchlists.selectors import watchlist_list
from watchlists.services import watchlist_create
from widgets.selectors import widget_list
from widgets.services import WidgetSpec, widget_create

from .models import Organisation
from .services.organisations import organisation_create

DEMO_SLUG = "demo"
DEMO_OWNER_EMAIL = "owner@demo.tickerdeck.test"
STAFF_EMAIL = "staff@tickerdeck.test"
# Well-known listings, so a newcomer's first dashboard moves at once.
DEMO_WATCHLISTS = {
    "Big Tech": ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META"],
    "Banks": ["JPM", "BAC", "WFC", "GS", "MS", "C"],
    "Consumer": ["KO", "PEP", "MCD", "NKE", "DIS", "COST", "WMT"],
}
# A page at this origin (e.g. `python3 -m http.server 8080` in a folder holding the snippet) shows it.
DEMO_WIDGET_ORIGIN = "http://localhost:8080"


def demo_ensure(*, password: str) -> list[str]:
    """Create (once) the `demo` organisation on the pro plan and a staff user; return what to print."""
    with transaction.atomic():
        owner = User.objects.filter(email=DEMO_OWNER_EMAIL).first()
        if owner is None:
            owner = owner_get_or_create(email=DEMO_OWNER_EMAIL, password=password)
        else:
            owner.set_password(password)
            owner.save(update_fields=["password"])
        organisation = Organisation.objects.filter(slug=DEMO_SLUG).first()
        if organisation is None:
            organisation = organisation_create(
                name="Demo Capital", slug=DEMO_SLUG, owner=owner, plan=Plan.objects.get(slug="pro")
            )
        demo_watchlists_ensure(organisation=organisation, owner=owner)
        demo_widget_ensure(organisation=organisation, owner=owner)
        staff = User.objects.filter(email=STAFF_EMAIL).first() or User.objects.create_superuser(
            email=STAFF_EMAIL, password=password
        )
        staff.set_password(password)
        staff.save(update_fields=["password"])
    return [
        f"Demo organisation: {organisation.name} at http://{DEMO_SLUG}.{settings.BASE_DOMAIN}:{settings.PORT}/",
        f"  owner log-in:  {DEMO_OWNER_EMAIL} / {password}",
        f"  staff admin:   {STAFF_EMAIL} / {password} (on the public host, /admin/)",
    ]


def demo_watchlists_ensure(*, organisation: Organisation, owner: User) -> None:
    """Give the demo organisation its watchlists, once: those it already has (by name) are left as they are."""
    with tenant_context(organisation):
        existing = {watchlist.name for watchlist in watchlist_list()}
        for name, symbols in DEMO_WATCHLISTS.items():
            if name not in existing:
                watchlist_create(organisation=organisation, name=name, symbols=symbols, created_by_id=owner.pk)


def demo_widget_ensure(*, organisation: Organisation, owner: User) -> None:
    """Give the demo organisation a ticker-tape widget of Big Tech, once (when it has no widget)."""
    with tenant_context(organisation):
        if not widget_list().exists():
            spec = WidgetSpec(
                name="Big Tech tape",
                kind="ticker_tape",
                symbols=DEMO_WATCHLISTS["Big Tech"],
                allowed_origins=(DEMO_WIDGET_ORIGIN,),
            )
            widget_create(organisation=organisation, spec=spec, created_by_id=owner.pk)
