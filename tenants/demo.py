"""The demo organisation and logins that `make run` creates."""

from django.conf import settings
from django.db import transaction

from accounts.models import User
from billing.models import Plan

from .models import Organisation
from .services import organisation_create, owner_get_or_create

DEMO_SLUG = "demo"
DEMO_OWNER_EMAIL = "owner@demo.tickerdeck.test"
STAFF_EMAIL = "staff@tickerdeck.test"


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
