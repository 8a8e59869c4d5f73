"""`make run`'s demo organisation: a newcomer's first dashboard has watchlists of well-known symbols."""

import pytest
from django_tenants.utils import tenant_context

from tenants.demo import DEMO_SLUG, DEMO_WATCHLISTS, DEMO_WIDGET_ORIGIN, demo_ensure
from tenants.models import Organisation
from watchlists.models import Watchlist
from widgets.models import Widget

pytestmark = pytest.mark.django_db


def demo_watchlists() -> dict[str, list[str]]:
    with tenant_context(Organisation.objects.get(slug=DEMO_SLUG)):
        return {w.name: list(w.symbols) for w in Watchlist.objects.all()}


def test_the_demo_organisation_starts_with_watchlists_of_well_known_symbols() -> None:
    demo_ensure(password="demo-Password-2026")
    assert demo_watchlists() == DEMO_WATCHLISTS
    assert "AAPL" in demo_watchlists()["Big Tech"]


def test_running_it_again_adds_nothing_and_keeps_a_users_edits() -> None:
    demo_ensure(password="demo-Password-2026")
    with tenant_context(Organisation.objects.get(slug=DEMO_SLUG)):
        Watchlist.objects.filter(name="Banks").update(symbols=["JPM"])
    demo_ensure(password="demo-Password-2026")
    assert demo_watchlists() == {**DEMO_WATCHLISTS, "Banks": ["JPM"]}


def test_the_demo_organisation_has_one_widget_to_try() -> None:
    demo_ensure(password="demo-Password-2026")
    demo_ensure(password="demo-Password-2026")
    with tenant_context(Organisation.objects.get(slug=DEMO_SLUG)):
        widgets = list(Widget.objects.all())
    assert [(w.name, w.kind, w.allowed_origins) for w in widgets] == [
        ("Big Tech tape", "ticker_tape", [DEMO_WIDGET_ORIGIN])
    ]
    assert widgets[0].symbols == DEMO_WATCHLISTS["Big Tech"]
