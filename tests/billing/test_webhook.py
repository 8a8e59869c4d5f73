"""POST /billing/webhook/: signed, each event once, never backwards, unknowns recorded (SPEC "Billing")."""

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from billing import gateway
from billing.events import DUPLICATE, organisations_grace_expired_notify
from billing.models import BillingHistory, Plan, StripeEvent
from tenants.models import Organisation, SubscriptionStatus
from tests.billing.conftest import WEBHOOK_SECRET, LocalStripe
from tests.billing.stripe_events import deliver, subscription_event
from tests.conftest import host_client
from tests.live import free_port
from tests.streaming.conftest import Committed, committed, connect, hub_cleanup, receive, receive_until

CUSTOMER = "cus_webhook_test"
GRACE_SECONDS = 2


@pytest.fixture
def paid_plans(db: None) -> dict[str, Plan]:
    plans = {plan.slug: plan for plan in Plan.objects.all()}
    for slug in ("pro", "business"):
        Plan.objects.filter(slug=slug).update(stripe_price_id=f"price_{slug}_test")
        plans[slug].refresh_from_db()
    return plans


@pytest.fixture
def customer_org(make_organisation: Callable[..., Organisation], paid_plans: dict[str, Plan]) -> Organisation:
    organisation = make_organisation("hookco")
    Organisation.objects.filter(pk=organisation.pk).update(stripe_customer_id=CUSTOMER)
    organisation.refresh_from_db()
    return organisation


def state(organisation: Organisation) -> tuple[str, str]:
    organisation.refresh_from_db()
    return organisation.plan.slug, organisation.subscription_status


@pytest.mark.django_db
def test_an_active_subscription_gives_the_plan_of_its_price(
    stripe_settings: LocalStripe, public_client: Client, customer_org: Organisation
) -> None:
    response = deliver(public_client, subscription_event("created", customer=CUSTOMER, status="active",
                                                         price="price_pro_test"))  # fmt: skip
    assert response.status_code == 200
    assert state(customer_org) == ("pro", "active")
    assert customer_org.stripe_subscription_id == "sub_test_1"
    assert BillingHistory.objects.filter(organisation=customer_org, description__contains="Pro").count() == 1


@pytest.mark.django_db
def test_a_bad_signature_is_refused_and_changes_nothing(
    stripe_settings: LocalStripe, public_client: Client, customer_org: Organisation
) -> None:
    event = subscription_event("created", customer=CUSTOMER, status="active", price="price_pro_test")
    response = deliver(public_client, event, secret="whsec_someone_else")
    assert response.status_code == 400
    assert state(customer_org) == ("free", "active")
    assert not StripeEvent.objects.filter(pk=event["id"]).exists()


@pytest.mark.django_db
def test_a_signature_older_than_five_minutes_is_refused(
    stripe_settings: LocalStripe, public_client: Client, customer_org: Organisation
) -> None:
    event = subscription_event("created", customer=CUSTOMER, status="active", price="price_pro_test")
    assert deliver(public_client, event, at=int(time.time()) - 301).status_code == 400
    assert state(customer_org) == ("free", "active")
    assert deliver(public_client, event, at=int(time.time()) - 290).status_code == 200
    assert state(customer_org) == ("pro", "active")


@pytest.mark.django_db
def test_a_replayed_event_is_answered_200_and_changes_nothing(
    stripe_settings: LocalStripe, public_client: Client, customer_org: Organisation
) -> None:
    now = int(time.time())
    upgrade = subscription_event("created", customer=CUSTOMER, status="active", price="price_pro_test", created=now)
    cancel = subscription_event("deleted", customer=CUSTOMER, status="canceled", price="price_pro_test",
                                created=now + 5)  # fmt: skip
    assert deliver(public_client, upgrade).status_code == 200
    assert deliver(public_client, cancel).status_code == 200
    assert state(customer_org) == ("free", "active")
    history = BillingHistory.objects.filter(organisation=customer_org).count()

    replay = deliver(public_client, upgrade)
    assert replay.status_code == 200
    assert replay.json()["outcome"] == DUPLICATE
    assert state(customer_org) == ("free", "active")
    assert BillingHistory.objects.filter(organisation=customer_org).count() == history


@pytest.mark.django_db
def test_an_older_subscription_update_arriving_late_does_not_move_the_organisation_back(
    stripe_settings: LocalStripe, public_client: Client, customer_org: Organisation
) -> None:
    now = int(time.time())
    older = subscription_event("updated", customer=CUSTOMER, status="active", price="price_pro_test", created=now - 60)
    newer = subscription_event("updated", customer=CUSTOMER, status="active", price="price_business_test",
                               created=now)  # fmt: skip
    assert deliver(public_client, newer).status_code == 200
    late = deliver(public_client, older)
    assert late.status_code == 200
    assert late.json()["outcome"].startswith("stale")
    assert state(customer_org) == ("business", "active")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("customer", "price", "outcome"),
    [("cus_nobody", "price_pro_test", "unknown customer cus_nobody"), (CUSTOMER, "price_gone", "unknown price")],
)
def test_an_unknown_customer_or_price_is_recorded_and_answered_200(
    stripe_settings: LocalStripe, public_client: Client, customer_org: Organisation, customer: str, price: str,
    outcome: str,
) -> None:  # fmt: skip
    event = subscription_event("updated", customer=customer, status="active", price=price)
    response = deliver(public_client, event)
    assert response.status_code == 200
    assert StripeEvent.objects.get(pk=event["id"]).outcome.startswith(outcome)
    assert state(customer_org) == ("free", "active")


@pytest.mark.django_db
def test_a_payment_failure_keeps_the_plan_for_the_grace_period(
    stripe_settings: LocalStripe, public_client: Client, customer_org: Organisation
) -> None:
    now = int(time.time())
    deliver(public_client, subscription_event("created", customer=CUSTOMER, status="active", price="price_pro_test",
                                              created=now - 10))  # fmt: skip
    deliver(public_client, subscription_event("updated", customer=CUSTOMER, status="past_due", price="price_pro_test",
                                              created=now))  # fmt: skip
    assert state(customer_org) == ("pro", "past_due")
    assert customer_org.payment_grace_until is not None
    assert timedelta(days=6.9) < customer_org.payment_grace_until - timezone.now() <= timedelta(days=7)


def test_two_deliveries_of_one_event_at_the_same_moment_are_processed_once(
    committed: Committed, settings: Settings
) -> None:
    pro = committed.plan_sync(stripe_price_id="price_concurrent_test")
    tenant = committed.tenant_sync("free", stripe_customer_id="cus_concurrent")
    event = subscription_event("created", customer="cus_concurrent", status="active", price="price_concurrent_test")
    start = threading.Barrier(2)
    answers: list[tuple[int, str]] = []

    def post() -> None:
        try:
            start.wait()
            response = deliver(host_client("localhost"), event)
            answers.append((response.status_code, response.json()["outcome"]))
        finally:
            connection.close()

    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert sorted(code for code, _ in answers) == [200, 200]
        assert [outcome for _, outcome in answers].count(DUPLICATE) == 1
        assert Organisation.objects.get(pk=tenant.organisation.pk).plan_id == pro.pk
        assert BillingHistory.objects.filter(organisation=tenant.organisation).count() == 1
    finally:
        StripeEvent.objects.filter(pk=event["id"]).delete()


async def test_an_upgrade_raises_an_open_streams_limits_and_a_downgrade_trims_it(
    committed: Committed, hub_cleanup: None, settings: Settings
) -> None:
    small = await committed.plan(max_symbols_per_stream=2, stripe_price_id="price_small_ws")
    big = await committed.plan(max_symbols_per_stream=8, stripe_price_id="price_big_ws")
    tenant = await committed.tenant(small, stripe_customer_id="cus_ws_upgrade")
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    ws = connect(tenant.host, session=tenant.session, query="symbols=AAPL,MSFT")
    await ws.connect()
    assert (await receive(ws))["limits"]["max_symbols"] == 2
    client, now = host_client("localhost"), int(time.time())

    up = subscription_event("created", customer="cus_ws_upgrade", status="active", price=big.stripe_price_id,
                            created=now - 5)  # fmt: skip
    assert (await sync_to_async(deliver)(client, up)).status_code == 200
    assert (await receive_until(ws, "limits", within=2))["max_symbols"] == 8
    ws_send = {"action": "subscribe", "symbols": ["NVDA", "AMZN", "GOOGL"]}
    await ws.send_to(text_data=orjson.dumps(ws_send).decode())
    assert (await receive_until(ws, "subscribed"))["symbols"] == ["NVDA", "AMZN", "GOOGL"]

    down = subscription_event("updated", customer="cus_ws_upgrade", status="active", price=small.stripe_price_id,
                              created=now)  # fmt: skip
    assert (await sync_to_async(deliver)(client, down)).status_code == 200
    assert (await receive_until(ws, "limits", within=2))["max_symbols"] == 2
    dropped = await receive_until(ws, "unsubscribed", within=2, reason="plan_limit")
    assert len(dropped["symbols"]) == 3
    await ws.disconnect()


async def test_past_due_streams_until_the_grace_ends_then_closes_with_4402(
    committed: Committed, hub_cleanup: None, settings: Settings
) -> None:
    paid = await committed.plan(stripe_price_id="price_grace_ws")
    tenant = await committed.tenant(paid, stripe_customer_id="cus_ws_grace")
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.BILLING_PAYMENT_GRACE_DAYS = GRACE_SECONDS / 86400
    ws = connect(tenant.host, session=tenant.session, query="symbols=AAPL")
    await ws.connect()
    assert (await receive(ws))["type"] == "snapshot"

    past_due = subscription_event("updated", customer="cus_ws_grace", status="past_due", price="price_grace_ws")
    assert (await sync_to_async(deliver)(host_client("localhost"), past_due)).status_code == 200
    assert (await receive_until(ws, "limits", within=2))["max_symbols"] == paid.max_symbols_per_stream

    organisation = await sync_to_async(Organisation.objects.get)(pk=tenant.organisation.pk)
    assert organisation.subscription_status == SubscriptionStatus.PAST_DUE
    assert organisation.payment_grace_until is not None
    assert await sync_to_async(organisations_grace_expired_notify)() == []  # still in grace
    assert await ws.receive_nothing(0.5), "the stream goes on during the grace period"
    await asyncio.sleep((organisation.payment_grace_until - timezone.now()).total_seconds() + 0.1)
    assert [o.pk for o in await sync_to_async(organisations_grace_expired_notify)()] == [organisation.pk]
    error = await receive_until(ws, "error", within=2)
    assert error["code"] == "payment_required"
    assert "/billing/" in error["message"]
    assert await ws.receive_output(2) == {"type": "websocket.close", "code": 4402}


__all__ = ["committed", "hub_cleanup"]  # fixtures from tests/streaming/conftest.py


def checkout_completed(*, slug: str, customer: str, subscription: str) -> dict[str, Any]:
    session = {"id": "cs_test_done", "object": "checkout.session", "mode": "subscription",
               "client_reference_id": slug, "customer": customer, "subscription": subscription}  # fmt: skip
    return {"id": f"evt_{uuid.uuid4().hex[:16]}", "object": "event", "type": "checkout.session.completed",
            "created": int(time.time()), "data": {"object": session}}  # fmt: skip


def subscribed_at_localstripe(localstripe: LocalStripe, *, price_id: str) -> tuple[str, str]:
    """A customer with a card and an active subscription at localstripe, as Checkout leaves them."""
    customer = gateway.customer_create(name="Checkout", email="buyer@x.example", organisation_slug="hookco")
    card = localstripe.post("/v1/payment_methods", {"type": "card", "card[number]": "4242424242424242",
                            "card[exp_month]": "12", "card[exp_year]": "2030", "card[cvc]": "123"})  # fmt: skip
    localstripe.post(f"/v1/payment_methods/{card['id']}/attach", {"customer": customer})
    localstripe.post(f"/v1/customers/{customer}", {"invoice_settings[default_payment_method]": card["id"]})
    subscription = localstripe.post("/v1/subscriptions", {"customer": customer, "items[0][plan]": price_id})
    return customer, str(subscription["id"])


@pytest.mark.django_db
def test_checkout_completed_links_the_customer_by_organisation_and_reads_the_subscription_from_stripe(
    stripe_settings: LocalStripe, public_client: Client, make_organisation: Callable[..., Organisation]
) -> None:
    organisation = make_organisation("checkco")
    product = gateway.product_create(name="Pro", plan_slug="pro")
    price = gateway.price_create(product_id=product.id, unit_amount=2900, currency="usd")
    Plan.objects.filter(slug="pro").update(stripe_price_id=price.id, stripe_product_id=product.id)
    customer, subscription = subscribed_at_localstripe(stripe_settings, price_id=price.id)

    response = deliver(public_client, checkout_completed(slug="checkco", customer=customer, subscription=subscription))

    assert response.status_code == 200
    assert state(organisation) == ("pro", "active")
    assert (organisation.stripe_customer_id, organisation.stripe_subscription_id) == (customer, subscription)
    assert list(organisation.billing_history.order_by("id").values_list("kind", flat=True)) == ["checkout", "plan"]


@pytest.mark.django_db
def test_when_stripe_cannot_be_read_the_event_is_not_stored_so_that_its_retry_is_processed(
    stripe_settings: LocalStripe, settings: Settings, public_client: Client,
    make_organisation: Callable[..., Organisation],
) -> None:  # fmt: skip
    organisation = make_organisation("retryco")
    product = gateway.product_create(name="Pro", plan_slug="pro")
    price = gateway.price_create(product_id=product.id, unit_amount=2900, currency="usd")
    Plan.objects.filter(slug="pro").update(stripe_price_id=price.id, stripe_product_id=product.id)
    customer, subscription = subscribed_at_localstripe(stripe_settings, price_id=price.id)
    event = checkout_completed(slug="retryco", customer=customer, subscription=subscription)
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    assert deliver(public_client, event).status_code == 503
    assert not StripeEvent.objects.filter(pk=event["id"]).exists()
    assert state(organisation) == ("free", "active")

    settings.STRIPE_API_BASE = stripe_settings.url
    assert deliver(public_client, event).status_code == 200
    assert state(organisation) == ("pro", "active")
