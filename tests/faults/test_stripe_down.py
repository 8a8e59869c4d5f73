"""The Stripe fake down during Checkout: the billing page says so, nothing is half-done, and the same
button works once Stripe is back (one customer, one Checkout Session)."""

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from billing.models import BillingHistory, Plan, StripeEvent
from tenants.models import Organisation
from tests.billing.conftest import SessionAnswerer, stripe_sessions
from tests.live import free_port
from tests.tenants.conftest import Team, member_client, team

pytestmark = [pytest.mark.live, pytest.mark.django_db]

__all__ = ["stripe_sessions", "team"]  # fixtures from tests/billing and tests/tenants


def stored(organisation: Organisation) -> tuple[str, str, str, int, int]:
    row = Organisation.objects.select_related("plan").get(pk=organisation.pk)
    return (row.plan.slug, row.stripe_customer_id, row.stripe_subscription_id,
            BillingHistory.objects.filter(organisation=row).count(), StripeEvent.objects.count())  # fmt: skip


def test_checkout_with_stripe_down_says_so_changes_nothing_and_works_once_stripe_is_back(
    team: Team, stripe_sessions: SessionAnswerer, settings: Settings
) -> None:
    Plan.objects.filter(slug="pro").update(stripe_price_id="price_pro_faults")
    before = stored(team.organisation)
    client: Client = member_client(team.owner)
    stripe_up = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"  # nothing listens: connections refused

    response = client.post("/billing/checkout/pro/", follow=True)

    assert response.redirect_chain == [("/billing/", 302)]
    page = response.content.decode()
    assert response.status_code == 200
    assert "Could not create a customer at Stripe" in page, "the page says what failed"
    assert stored(team.organisation) == before, "nothing stored: no customer id, no plan, no history"
    assert stripe_sessions.requests == []

    settings.STRIPE_API_BASE = stripe_up
    again = client.post("/billing/checkout/pro/")
    assert again.status_code == 303
    assert again["Location"].startswith(f"{stripe_up}/pay/")
    paths = [path for path, _ in stripe_sessions.requests]
    assert paths == ["/v1/customers", "/v1/checkout/sessions"], "one customer, one session"
    plan, customer, subscription, history, events = stored(team.organisation)
    assert (plan, subscription, history, events) == (before[0], "", before[3], before[4]), (
        "the plan changes only when Stripe's webhook says it was paid"
    )
    assert customer == "cus_test_1"
