"""Webhooks against a local HTTP receiver that checks the signature: retries with backoff, each attempt a row."""

import asyncio
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from alerts.engine import AlertEngine
from alerts.models import AlertChannel, AlertEvent, DeliveryStatus, WebhookDelivery
from alerts.services import alert_settings_update
from alerts.signing import SIGNATURE_HEADER, SignatureError, signature_verify
from tests.alerts.conftest import make_alert
from tests.alerts.live import Running, alert_in, engine_evaluating, replay_provider, until
from tests.streaming.conftest import Committed, Tenant
from tests.watchlists.conftest import inside

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("clean_alert_state")]


@dataclass
class Receiver:
    """A webhook endpoint on loopback: verifies each request's signature, answers the next planned status."""

    statuses: list[int]
    secret: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(statuses=[500, 500, 200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                signature_verify(header=self.headers[SIGNATURE_HEADER], body=body, secret=state.secret)
                verified = True
            except SignatureError:
                verified = False
            status = state.statuses.pop(0) if verified and state.statuses else 400
            state.received.append({"verified": verified, "body": body, "status": status,
                                   "event": self.headers["Tickerdeck-Event-Id"]})  # fmt: skip
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/tickerdeck"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def quick_retries(settings: Any) -> None:
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on 127.0.0.1
    settings.ALERT_WEBHOOK_BACKOFF_SECONDS = 0.2
    settings.ALERT_WEBHOOK_BACKOFF_MAX_SECONDS = 5


async def webhook_to(tenant: Tenant, receiver: Receiver) -> None:
    def save() -> str:
        with inside(tenant.organisation):
            return alert_settings_update(organisation=tenant.organisation, webhook_url=receiver.url).webhook_secret

    receiver.secret = await sync_to_async(save)()


def deliveries_of(tenant: Tenant) -> list[WebhookDelivery]:
    with inside(tenant.organisation):
        return list(WebhookDelivery.objects.order_by("attempt"))


def events_of(tenant: Tenant) -> list[AlertEvent]:
    with inside(tenant.organisation):
        return list(AlertEvent.objects.all())


@pytest.mark.usefixtures("quick_retries")
async def test_a_webhook_that_fails_twice_is_retried_and_every_attempt_is_recorded(
    committed: Committed, running: Running, receiver: Receiver
) -> None:
    tenant = await committed.tenant("pro")
    await webhook_to(tenant, receiver)
    alert_id = await alert_in(tenant, name="Hook", channels=[AlertChannel.WEBHOOK])
    _, engine = running.start(replay_provider())
    await engine_evaluating(engine)

    deliveries = await until(
        lambda: (rows := deliveries_of(tenant)) and rows[-1].status == DeliveryStatus.SUCCEEDED and rows, 12,
        "a successful third attempt",
    )  # fmt: skip

    [event] = await sync_to_async(events_of)(tenant)
    assert [(d.attempt, d.status, d.response_status) for d in deliveries] == [
        (1, "failed", 500), (2, "failed", 500), (3, "succeeded", 200),
    ]  # fmt: skip
    assert all(d.url == receiver.url and d.duration_ms is not None for d in deliveries)
    first_retry, second_retry = (b.sent_at - a.sent_at for a, b in itertools.pairwise(deliveries))
    assert first_retry.total_seconds() >= 0.2
    assert second_retry.total_seconds() >= 0.4  # the backoff doubles
    assert [r["verified"] for r in receiver.received] == [True, True, True]
    assert {r["event"] for r in receiver.received} == {event.uid}
    assert len({r["body"] for r in receiver.received}) == 1, "every attempt posts the same bytes"
    payload = json.loads(receiver.received[0]["body"])
    assert payload["id"] == event.uid
    assert payload["type"] == "alert.fired"
    assert payload["alert"]["id"] == alert_id
    assert payload["alert"]["symbol"] == "AAPL"
    assert payload["organisation"] == tenant.organisation.slug


@pytest.mark.usefixtures("quick_retries")
async def test_a_pending_attempt_left_by_a_stopped_engine_is_sent_by_the_next(
    committed: Committed, receiver: Receiver
) -> None:
    receiver.statuses = [204]
    tenant = await committed.tenant("pro")
    await webhook_to(tenant, receiver)

    def left_behind() -> None:
        alert = make_alert(tenant.organisation, channels=[AlertChannel.WEBHOOK])
        with inside(tenant.organisation):
            event = AlertEvent.objects.create(
                alert=alert, alert_name=alert.name, symbol="AAPL", condition=alert.condition, level=alert.level,
                description=alert.description, price=105.1, change_pct=5.1, quote_ts=1, channels=["webhook"],
            )  # fmt: skip
            WebhookDelivery.objects.create(event=event, attempt=1, next_attempt_at=timezone.now())

    await sync_to_async(left_behind)()
    engine = AlertEngine()
    engine.start()
    try:
        # This process leads: it takes over every organisation's pending attempts.
        leading = asyncio.create_task(engine.lead(replay_provider()))
        [delivery] = await until(
            lambda: [d for d in deliveries_of(tenant) if d.status == DeliveryStatus.SUCCEEDED], 5, "the delivery"
        )
        leading.cancel()
    finally:
        await engine.close()
    assert delivery.response_status == 204
    assert [r["verified"] for r in receiver.received] == [True]
