"""Webhook deliveries: each attempt is a row (tenant schema); failed ones are tried again with backoff for 24 h.

A delivery is claimed before it is sent (its row locked, `claimed_until` set, committed), so two
senders never post the same attempt: an engine that takes over from another may hold the same due
attempts in its queue, and only one claim wins. Each attempt records its response code (or error)
and duration; a failure schedules the next attempt, `ALERT_WEBHOOK_BACKOFF_SECONDS` after this one
and twice as long each time (capped), until `ALERT_WEBHOOK_RETRY_HOURS` after the alert fired. The
last attempt is due at that deadline at the latest.

The sender (`WebhookSender`) is a task of the alert engine: a heap of (due, schema, id), fed by the
engine's firings and by a scan of every schema's pending rows when the engine starts leading and
every few minutes, so retries survive a restart or a failover.
"""

import asyncio
import heapq
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import orjson
from channels.db import database_sync_to_async
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from tenants.models import Organisation

from .conf import alert_settings
from .destinations import DestinationError, destination_check
from .models import AlertEvent, AlertSettings, DeliveryStatus, WebhookDelivery
from .signing import SIGNATURE_HEADER, signature_header

logger = logging.getLogger(__name__)

CLAIM_MARGIN_SECONDS = 30  # a claim outlives the request's timeout by this much
SENDER_CONCURRENCY = 8
IDLE_WAKE_SECONDS = 1.0
USER_AGENT = "Tickerdeck-Webhooks/1"


@dataclass(frozen=True)
class Claimed:
    """An attempt this sender may post now: where, what, signed with which secret."""

    schema: str
    delivery_id: int
    url: str
    secret: str
    body: bytes
    event_uid: str


@dataclass(frozen=True)
class Outcome:
    """What one attempt got back."""

    ok: bool
    url: str
    response_status: int | None = None
    error: str = ""
    duration_ms: int | None = None


def webhook_body(event: AlertEvent, organisation_slug: str) -> bytes:
    """The JSON posted for an event: the same bytes on every attempt (only the signature's time changes)."""
    return orjson.dumps(
        {
            "id": event.uid,
            "type": "alert.fired",
            "created": int(event.fired_at.timestamp()),
            "organisation": organisation_slug,
            "alert": {
                "id": event.alert_id,
                "name": event.alert_name,
                "symbol": event.symbol,
                "condition": event.description,
                "price": event.price,
                "ts": event.quote_ts,
                "kind": event.condition,
                "level": str(event.level),
                "change_pct": event.change_pct,
                "delay_minutes": event.delay_minutes,
            },
        }
    )


def retry_due(*, fired_at: datetime, attempt: int, now: datetime) -> datetime | None:
    """When attempt `attempt + 1` is due after attempt `attempt` failed now; None once the 24 hours are over."""
    deadline = fired_at + alert_settings.webhook_retry_for
    if now >= deadline:
        return None
    wait = min(alert_settings.webhook_backoff * 2 ** min(attempt - 1, 30), alert_settings.webhook_backoff_max)
    return min(now + wait, deadline)


def delivery_claim(*, schema: str, delivery_id: int) -> Claimed | datetime | None:
    """Claim a due attempt (Claimed), or say when it is due (datetime), or None: done, or another sender has it."""
    now = timezone.now()
    slug = Organisation.objects.filter(schema_name=schema).values_list("slug", flat=True).first()
    if slug is None:
        return None  # the organisation was deleted
    with schema_context(schema), transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
            .first()
        )
        if delivery is None or (delivery.claimed_until is not None and delivery.claimed_until > now):
            return None
        if delivery.next_attempt_at > now:
            return delivery.next_attempt_at
        delivery.claimed_until = now + timedelta(seconds=alert_settings.webhook_timeout_seconds + CLAIM_MARGIN_SECONDS)
        delivery.save(update_fields=["claimed_until"])
        endpoint = AlertSettings.objects.filter(pk=1).first()
        return Claimed(
            schema=schema,
            delivery_id=delivery.pk,
            url=endpoint.webhook_url if endpoint is not None else "",
            secret=endpoint.webhook_secret if endpoint is not None else "",
            body=webhook_body(delivery.event, slug),
            event_uid=delivery.event.uid,
        )


def delivery_record(*, schema: str, delivery_id: int, outcome: Outcome) -> tuple[datetime, int] | None:
    """Store an attempt's outcome; after a failure, the next attempt's (due, id) unless the 24 hours are over."""
    now = timezone.now()
    with schema_context(schema), transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update(of=("self",)).select_related("event").get(pk=delivery_id)
        if delivery.status != DeliveryStatus.PENDING:
            return None
        delivery.status = DeliveryStatus.SUCCEEDED if outcome.ok else DeliveryStatus.FAILED
        delivery.url = outcome.url[:2000]
        delivery.sent_at = now
        delivery.response_status = outcome.response_status
        delivery.error = outcome.error[:300]
        delivery.duration_ms = outcome.duration_ms
        delivery.claimed_until = None
        delivery.save()
        if outcome.ok:
            return None
        due = retry_due(fired_at=delivery.event.fired_at, attempt=delivery.attempt, now=now)
        if due is None:
            return None
        following = WebhookDelivery.objects.create(
            event=delivery.event, attempt=delivery.attempt + 1, next_attempt_at=due
        )
        return due, following.pk


def deliveries_pending(*, schema: str) -> list[tuple[datetime, int]]:
    """The pending attempts of one organisation, (due, id): what a starting sender must not forget."""
    with schema_context(schema):
        return list(WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).values_list("next_attempt_at", "pk"))


async def webhook_post(claimed: Claimed, client: httpx.AsyncClient) -> Outcome:
    """Post one signed attempt; any 2xx is a success, anything else (or no answer) a failure to retry."""
    if not claimed.url:
        return Outcome(ok=False, url="", error="No webhook address is set: add one on the alert settings page.")
    started = time.monotonic()
    try:
        await destination_check(claimed.url)
        response = await client.post(
            claimed.url,
            content=claimed.body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Tickerdeck-Event-Id": claimed.event_uid,
                SIGNATURE_HEADER: signature_header(secret=claimed.secret, body=claimed.body),
            },
        )
    except DestinationError as exc:
        return Outcome(ok=False, url=claimed.url, error=f"Refused: {exc}.")
    except httpx.HTTPError as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return Outcome(ok=False, url=claimed.url, error=detail, duration_ms=_elapsed_ms(started))
    return Outcome(
        ok=200 <= response.status_code < 300,
        url=claimed.url,
        response_status=response.status_code,
        duration_ms=_elapsed_ms(started),
    )


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


@dataclass(order=True, frozen=True)
class _Due:
    at: float  # epoch seconds
    schema: str = field(compare=False)
    delivery_id: int = field(compare=False)


class WebhookSender:
    """The alert engine's delivery task: posts attempts as they fall due, a few at a time."""

    def __init__(self) -> None:
        self._heap: list[_Due] = []
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self.sent = 0  # attempts posted by this sender (any outcome)
        self.failed = 0  # of which got no 2xx answer

    def schedule(self, schema: str, delivery_id: int, due: datetime) -> None:
        heapq.heappush(self._heap, _Due(due.timestamp(), schema, delivery_id))
        self._wake.set()

    def __len__(self) -> int:
        return len(self._heap)

    async def run(self) -> None:
        limit = asyncio.Semaphore(SENDER_CONCURRENCY)
        timeout = httpx.Timeout(alert_settings.webhook_timeout_seconds)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            try:
                while True:
                    now = time.time()
                    while self._heap and self._heap[0].at <= now:
                        due = heapq.heappop(self._heap)
                        await limit.acquire()
                        task = asyncio.create_task(self._deliver(due, client, limit))
                        self._running.add(task)
                        task.add_done_callback(self._running.discard)
                    wait = min(IDLE_WAKE_SECONDS, self._heap[0].at - now) if self._heap else IDLE_WAKE_SECONDS
                    self._wake.clear()
                    try:
                        async with asyncio.timeout(max(0.0, wait)):
                            await self._wake.wait()
                    except TimeoutError:
                        pass
            finally:
                for task in list(self._running):
                    task.cancel()

    async def _deliver(self, due: _Due, client: httpx.AsyncClient, limit: asyncio.Semaphore) -> None:
        try:
            claim = await database_sync_to_async(delivery_claim, thread_sensitive=False)(
                schema=due.schema, delivery_id=due.delivery_id
            )
            if isinstance(claim, datetime):
                self.schedule(due.schema, due.delivery_id, claim)
            elif claim is not None:
                outcome = await webhook_post(claim, client)
                self.sent += 1
                self.failed += not outcome.ok
                following = await database_sync_to_async(delivery_record, thread_sensitive=False)(
                    schema=due.schema, delivery_id=due.delivery_id, outcome=outcome
                )
                if following is not None:
                    self.schedule(due.schema, following[1], following[0])
        except Exception:  # the database may be away: the periodic scan finds the attempt again
            logger.exception("webhook delivery %s of %s failed", due.delivery_id, due.schema)
        finally:
            limit.release()
