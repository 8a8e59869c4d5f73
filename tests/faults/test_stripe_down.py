"""The Stripe fake down during Checkout: the billing page says so, nothing is half-done, and the same
button works once Stripe is back (one customer, one Checkout Session)."""

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from billing.models import BillingHistory, Plan, StripeEvent
from tenants.models import Organisation
from tests.billing.conftest import SessionAnswerer, stripe_sessions
from tests.live import free_port, record_figure
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


@pytest.fixture
def hung_stripe() -> Iterator[str]:
    """A server that accepts connections and reads requests but never answers (a Stripe that hangs)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for connection in accepted:
            connection.close()
        listener.close()


def test_checkout_with_stripe_hanging_gives_up_within_the_timeout_and_changes_nothing(
    team: Team, hung_stripe: str, settings: Settings
) -> None:
    Plan.objects.filter(slug="pro").update(stripe_price_id="price_pro_faults")
    before = stored(team.organisation)
    settings.STRIPE_SECRET_KEY = "sk_test_hung"
    settings.STRIPE_API_BASE = hung_stripe
    settings.STRIPE_TIMEOUT_SECONDS = 0.5

    started = time.monotonic()
    response = member_client(team.owner).post("/billing/checkout/pro/", follow=True)
    waited = time.monotonic() - started

    assert response.redirect_chain == [("/billing/", 302)]
    assert "Could not create a customer at Stripe" in response.content.decode()
    assert stored(team.organisation) == before, "nothing stored"
    record_figure("faults: Checkout against a Stripe that never answers (0.5 s timeout, 2 retries)",
                  f"the page answered after {waited:.1f} s")  # fmt: skip
