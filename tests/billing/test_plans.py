"""Plans: seeded as SPEC says, edited by staff in the admin, shown at once on the pricing page."""

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from billing.models import Plan
from tests.conftest import host_client

pytestmark = pytest.mark.django_db

SPEC_PLANS = {
    # slug: (price, symbols/stream, streams, watchlists, widgets, widget viewers, realtime, delay)
    "free": (Decimal("0"), 5, 2, 1, 0, 0, False, 15),
    "pro": (Decimal("29"), 50, 10, 10, 3, 200, True, 0),
    "business": (Decimal("199"), 500, 100, 100, 25, 5000, True, 0),
}


def test_the_plans_of_the_spec_are_seeded() -> None:
    seeded = {
        p.slug: (p.price_monthly, p.max_symbols_per_stream, p.max_streams, p.max_watchlists, p.max_widgets,
                 p.max_widget_viewers, p.realtime, p.delay_minutes)
        for p in Plan.objects.all()
    }  # fmt: skip
    assert seeded == SPEC_PLANS
    assert Plan.objects.get(is_default=True).slug == "free"


@pytest.fixture
def staff_client() -> Client:
    staff = User.objects.create_superuser(email="staff@tickerdeck.example", password="x-staff-password-1")
    client = host_client("localhost")
    client.force_login(staff)
    return client


def admin_form(plan: Plan, **changes: object) -> dict[str, object]:
    fields = ["name", "slug", "price_monthly", "stripe_price_id", "max_symbols_per_stream", "max_streams",
              "max_watchlists", "max_widgets", "max_widget_viewers", "delay_minutes"]  # fmt: skip
    data: dict[str, object] = {field: getattr(plan, field) for field in fields}
    for flag in ("realtime", "is_public", "is_default"):
        if getattr(plan, flag):
            data[flag] = "on"
    data.update(changes)
    return {key: value for key, value in data.items() if value is not False}


def test_an_admin_price_edit_shows_on_the_pricing_page_at_once(staff_client: Client) -> None:
    pro = Plan.objects.get(slug="pro")
    assert "$29" in host_client("localhost").get("/pricing/").content.decode()

    response = staff_client.post(f"/admin/billing/plan/{pro.pk}/change/", admin_form(pro, price_monthly="39"))

    assert response.status_code == 302, response.content.decode()[:2000]
    page = host_client("localhost").get("/pricing/").content.decode()
    assert "$39" in page
    assert "$29" not in page


def test_a_plan_hidden_in_the_admin_leaves_the_pricing_page(staff_client: Client) -> None:
    business = Plan.objects.get(slug="business")

    form = admin_form(business, is_public=False)
    staff_client.post(f"/admin/billing/plan/{business.pk}/change/", form)

    page = host_client("localhost").get("/pricing/").content.decode()
    assert 'data-plan="business"' not in page
    assert 'data-plan="pro"' in page


def test_the_plan_admin_lists_searches_and_orders_by_price(staff_client: Client) -> None:
    listing = staff_client.get("/admin/billing/plan/").content.decode()
    assert listing.index("Free") < listing.index("Pro") < listing.index("Business")

    found = staff_client.get("/admin/billing/plan/?q=busi").content.decode()
    assert "Business" in found
    assert "/admin/billing/plan/1/change/" not in found or Plan.objects.get(pk=1).slug == "business"


def test_staff_see_organisations_with_plan_members_and_domain(staff_client: Client, make_organisation: Any) -> None:
    make_organisation("acme", plan="pro", name="Acme Labs")

    page = staff_client.get("/admin/tenants/organisation/").content.decode()

    assert "Acme Labs" in page
    assert "acme.localhost" in page
    assert "Pro" in page
    assert staff_client.get("/admin/tenants/membership/").status_code == 200
    assert staff_client.get("/admin/accounts/user/").status_code == 200
