"""End to end: localstripe sends its signed webhooks to a real web process; an open stream follows."""

import asyncio
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from billing import gateway
from billing.models import BillingHistory, Plan, StripeEvent
from tenants.models import Organisation
from tests.billing.conftest import SECRET_KEY, WEBHOOK_SECRET, LocalStripe
from tests.billing.stripe_events import signed
from tests.live import LiveServer, record_figure, stream_environment, uvicorn_server
from tests.streaming import live_support
from tests.streaming.conftest import Committed
from tests.streaming.conftest import committed as committed_rows

pytestmark = [pytest.mark.live]

db, committed = live_support.db, committed_rows


@pytest.fixture
def stripe_web(db: None, committed: Committed, localstripe: LocalStripe) -> Iterator[LiveServer]:
    """A uvicorn process configured for localstripe, which sends it every event it makes."""
    stripe_env = {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                  "STRIPE_API_BASE": localstripe.url}  # fmt: skip
    started = timezone.now()
    with uvicorn_server(**stream_environment(), **stripe_env) as server:
        localstripe.send_webhooks_to(server.url("/billing/webhook/"))
        yield server
    StripeEvent.objects.filter(received__gte=started).delete()  # committed rows, as `committed` deletes its own


async def next_of(ws: Any, kind: str, within: float) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            message = orjson.loads(await ws.recv())
            if message["type"] == kind:
                return dict(message)


async def test_a_subscription_paid_at_stripe_upgrades_an_open_stream_and_its_cancellation_returns_to_free(
    committed: Committed, stripe_web: LiveServer, stripe_settings: LocalStripe
) -> None:
    pro = await committed.plan(max_symbols_per_stream=50, realtime=True, price_monthly=29, name="Live Pro")
    product = gateway.product_create(name=pro.name, plan_slug=pro.slug)
    price = gateway.price_create(product_id=product.id, unit_amount=2900, currency="usd")
    await sync_to_async(Plan.objects.filter(pk=pro.pk).update)(stripe_price_id=price.id, stripe_product_id=product.id)
    tenant = await committed.tenant("free")
    customer = gateway.customer_create(
        name="Live", email="owner@live.example", organisation_slug=tenant.organisation.slug
    )
    await sync_to_async(Organisation.objects.filter(pk=tenant.organisation.pk).update)(stripe_customer_id=customer)
    card = stripe_settings.post("/v1/payment_methods", {"type": "card", "card[number]": "4242424242424242",
                                "card[exp_month]": "12", "card[exp_year]": "2030", "card[cvc]": "123"})  # fmt: skip
    stripe_settings.post(f"/v1/payment_methods/{card['id']}/attach", {"customer": customer})
    stripe_settings.post(f"/v1/customers/{customer}", {"invoice_settings[default_payment_method]": card["id"]})

    async with live_support.ws_connect(stripe_web, tenant.host, tenant.session, "symbols=AAPL") as ws:
        assert (await next_of(ws, "snapshot", 5))["limits"]["max_symbols"] == 5
        started = time.monotonic()
        subscription = stripe_settings.post("/v1/subscriptions", {"customer": customer, "items[0][plan]": price.id})
        assert subscription["status"] == "active"
        assert (await next_of(ws, "limits", 10))["max_symbols"] == 50
        record_figure("stripe subscription paid -> open stream's new limits", f"{time.monotonic() - started:.2f} s "
                      "(localstripe waits 1 s before each webhook)")  # fmt: skip
        symbols = ["MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM"]
        await ws.send(orjson.dumps({"action": "subscribe", "symbols": symbols}).decode())
        assert len((await next_of(ws, "subscribed", 5))["symbols"]) == 7

        stripe_settings.post(f"/v1/subscriptions/{subscription['id']}", {}, method="DELETE")
        assert (await next_of(ws, "limits", 10))["max_symbols"] == 5
        assert len((await next_of(ws, "unsubscribed", 5))["symbols"]) == 3

    organisation = await sync_to_async(Organisation.objects.select_related("plan").get)(pk=tenant.organisation.pk)
    assert (organisation.plan.slug, organisation.subscription_status, organisation.stripe_subscription_id) == (
        "free", "active", "")  # fmt: skip
    history = BillingHistory.objects.filter(organisation=organisation).order_by("id")
    assert await sync_to_async(lambda: [line.description for line in history])() == [
        "Plan is now Live Pro (subscription active).",
        "Plan is now Free (subscription canceled).",
    ]

    # Handling time of one webhook over HTTP (signature, event row, history line, commit).
    timings = []
    for n in range(20):
        invoice = {"id": f"in_{n}", "customer": customer, "amount_paid": 2900, "currency": "usd"}
        event_id = f"evt_timing_{tenant.organisation.slug}_{n}"
        event = {"id": event_id, "type": "invoice.paid", "created": int(time.time()), "data": {"object": invoice}}
        body, header = signed(event)
        started = time.monotonic()
        status, _ = await sync_to_async(http_post)(stripe_web.url("/billing/webhook/"), body, header)
        timings.append(time.monotonic() - started)
        assert status == 200
    timings.sort()
    record_figure("webhook handling over HTTP (invoice.paid, 20 deliveries)",
                  f"p50 {timings[10] * 1000:.1f} ms, max {timings[-1] * 1000:.1f} ms")  # fmt: skip


def http_post(url: str, body: bytes, signature: str) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json", "Stripe-Signature": signature}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (loopback)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        return int(response.status), response.read()
