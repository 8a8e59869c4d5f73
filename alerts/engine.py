"""The alert engine: a feed observer that evaluates every organisation's alerts on the quotes the leader publishes.

Every `run_feed` process has one (streaming.observers). Each keeps the whole index loaded and
follows changes (a hot standby), and registers the (delay, symbol) pairs its alerts need in the
watch registry, so the feed quotes a symbol that only an alert watches. Only the leader's engine is
told of quotes, and only it runs `lead` (a LeadingObserver): its books start from the last values
the previous leader stored, then it evaluates, delivers webhooks and stores its own last values.

In the publishing loop, `observe` does only the index's arithmetic (alerts.index: a dict lookup and
a few bisections per quote) and queues what fired. Background tasks of the engine, off that loop:

* the firer writes each firing (alerts.firing: once per cooldown under the alert's row lock),
  schedules its webhook and sends its e-mails, on worker threads;
* while leading, the webhook sender posts due attempts (alerts.deliveries) and the books' last
  values are stored twice a second (alerts.store);
* the keeper loads the index, reloads an organisation when its alerts change (alerts.store, polled
  every 0.25 s) or its plan does (every 10 s), reloads all every 5 minutes, and keeps the watch
  registry up to date.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Coroutine, Iterable
from typing import Any

from channels.db import database_sync_to_async

from core.tasks import cancel_until_done, where
from streaming.providers import MarketDataProvider
from streaming.quotes import Quote
from streaming.state import StreamState, Watch, stream_state

from .deliveries import WebhookSender
from .firing import Fired, alerts_email, alerts_fire
from .index import AlertIndex, Firing
from .loading import OrganisationPlan, SchemaAlerts, alerts_load, deliveries_pending_all, organisation_plans
from .store import AlertStore

logger = logging.getLogger(__name__)

# The watch registry's schema for alerts: one entry per (delay, symbol) whatever the number of
# organisations, and quotes the feed sends to it reach no connection (no organisation's schema
# starts with "_"). Registering each organisation's schema instead would have made the feed send
# every organisation with an alert on a symbol a message per publish window.
WATCH_SCHEMA = "_alerts"
CHANGES_POLL_SECONDS = 0.25
PLANS_REFRESH_SECONDS = 10.0
FULL_RELOAD_SECONDS = 300.0
PRICES_STORE_SECONDS = 0.5
WATCH_HEARTBEAT_SECONDS = 5.0
FIRE_BATCH = 200
FIRE_RETRY_SECONDS = 1.0
FIRE_GIVE_UP_MS = 300_000  # a firing the database could not take for 5 minutes is dropped (and logged)
LOAD_RETRY_SECONDS = 2.0
CLOSE_WAIT_SECONDS = 5.0


def _db(function: Any) -> Any:
    return database_sync_to_async(function, thread_sensitive=False)


class AlertEngine:
    """A QuoteObserver (streaming.feed): alerts evaluated where the quotes are published."""

    def __init__(self, state: StreamState | None = None) -> None:
        self.index = AlertIndex()
        self.sender = WebhookSender()
        self.process_id = f"alerts-{uuid.uuid4().hex[:12]}"
        self.plans: dict[str, OrganisationPlan] = {}
        self.fired = 0  # events this engine wrote
        self._state = state
        self._store = AlertStore()
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._loaded = asyncio.Event()
        self._ready = False  # evaluating: this process leads, and the books start from the last leader's values
        self._queue: deque[Firing] = deque()
        self._queued = asyncio.Event()
        self._watch_dirty = asyncio.Event()

    def counts(self) -> dict[str, int]:
        """Totals for the feed's status (and so /metrics): events fired, webhook attempts posted and failed."""
        return {"alerts_fired": self.fired, "alert_webhooks_sent": self.sender.sent,
                "alert_webhooks_failed": self.sender.failed}  # fmt: skip

    # -- the observer ------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the index, follow changes and write firings from now on (in every feed process, at start)."""
        if self._started:
            return
        self._started = True
        self._spawn(self._keep_index(), "alerts-index")
        self._spawn(self._keep_watches(), "alerts-watches")
        self._spawn(self._fire(), "alerts-fire")

    async def lead(self, provider: MarketDataProvider) -> None:
        """While this process leads the feed (a LeadingObserver): evaluate, deliver webhooks, store last values.

        First the books start from the values the previous leader evaluated last, so a level crossed
        while no one led counts as crossed (once: the database's cooldown guard holds), and this
        process takes over every organisation's pending webhook attempts. Cancelled when the
        leadership ends; firings already queued are still written.
        """
        self.start()
        await self._loaded.wait()
        delays = {delay for delay, _ in self.index.books}
        stored = {delay: await self._store.prices_load(delay) for delay in delays}
        self.index.forget_last()
        for delay, prices in stored.items():
            for symbol, last in prices.items():
                self.index.seed(delay, symbol, last.price, last.change_pct)
        self._ready = True
        try:
            await self._take_over_deliveries()
            tasks = [
                asyncio.create_task(self.sender.run(), name="alerts-webhooks"),
                asyncio.create_task(self._store_prices(), name="alerts-prices"),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # both run for as long as this process leads: one that ended failed
            finally:
                # Not a TaskGroup: it cancels its tasks once, and waits forever for one that lost the
                # cancellation (core.tasks). Shielded: a repeated cancellation of `lead` must not
                # leave these two running.
                await asyncio.shield(self._stop(tasks))
        finally:
            self._ready = False

    async def observe(self, delay_minutes: int, quotes: dict[str, Quote]) -> None:
        """One published batch: the index's arithmetic only; what fired is queued for the firer."""
        if not self._ready:
            return  # leading has just begun: the books are being seeded
        firings = self.index.evaluate(delay_minutes, quotes)
        if firings:
            self._queue.extend(firings)
            self._queued.set()

    async def close(self) -> None:
        """Stop every task and take this engine's watches out of the registry (tests, shutdown)."""
        tasks, self._tasks = self._tasks, set()
        await self._stop(tasks)
        with contextlib.suppress(Exception):
            await self._watches().watches_update(self.process_id, set(), set(), full=True)
        await self._store.close()

    @staticmethod
    async def _stop(tasks: Iterable["asyncio.Task[None]"]) -> None:
        stuck = await cancel_until_done(tasks, CLOSE_WAIT_SECONDS)
        if stuck:
            logger.warning("alert engine tasks still running %s s after their cancellation: %s", CLOSE_WAIT_SECONDS,
                           "; ".join(map(where, stuck)))  # fmt: skip

    @property
    def ready(self) -> bool:
        return self._ready

    # -- leading -------------------------------------------------------------------------------------
    async def _take_over_deliveries(self) -> None:
        try:
            pending = await _db(deliveries_pending_all)(schemas=set(self.plans))
        except Exception:
            logger.exception("could not read pending webhook deliveries; the next scan will")
            return
        for schema, due, delivery_id in pending:
            self.sender.schedule(schema, delivery_id, due)

    async def _fire(self) -> None:
        """Write what fired (worker threads), then schedule webhooks and send e-mails."""
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(FIRE_BATCH, len(self._queue)))]
                try:
                    fired, left = await _db(alerts_fire)(firings=batch)
                except Exception:  # no database connection at all: the whole batch waits
                    logger.exception("could not write %d alert firings; retrying", len(batch))
                    fired, left = [], batch
                self._fired(fired)
                if left:
                    oldest = time.time_ns() // 1_000_000 - FIRE_GIVE_UP_MS
                    self._queue.extendleft(reversed([f for f in left if f.quote_ts >= oldest]))
                    await asyncio.sleep(FIRE_RETRY_SECONDS)
                if any(outcome.email_user_ids for outcome in fired):
                    try:
                        await _db(alerts_email)(fired=fired)
                    except Exception:
                        logger.exception("alert e-mails failed")

    def _fired(self, fired: list[Fired]) -> None:
        """Note what the database said: written (schedule its webhook), or quiet (another engine fired it)."""
        for outcome in fired:
            rule = outcome.firing.rule
            if outcome.quiet_until_ms is not None:
                self.index.quiet_set(rule.schema, rule.alert_id, outcome.quiet_until_ms)
            if outcome.event_id is not None:
                self.fired += 1
            if outcome.delivery is not None:
                self.sender.schedule(rule.schema, outcome.delivery[1], outcome.delivery[0])

    async def _store_prices(self) -> None:
        """Twice a second, the last values evaluated: where the next leader starts from."""
        while True:
            await asyncio.sleep(PRICES_STORE_SECONDS)
            touched = self.index.touched_take()
            try:
                for delay, prices in touched.items():
                    await self._store.prices_store(delay, prices)
            except Exception:
                logger.exception("could not store the alert books' last prices")

    # -- the index -----------------------------------------------------------------------------------
    async def _keep_index(self) -> None:
        while True:
            try:
                seen = await self._store.changed_seq()
                await self._reload(await _db(organisation_plans)())
                break
            except Exception:
                logger.exception("could not load the alerts; retrying")
                await asyncio.sleep(LOAD_RETRY_SECONDS)
        self._loaded.set()
        plans_at = reloaded_at = time.monotonic()
        while True:
            await asyncio.sleep(CHANGES_POLL_SECONDS)
            try:
                if await self._store.changed_seq() > seen:
                    seen, changed = await self._store.changed_since(seen)
                    # A new organisation's first alert: its plan is not known yet.
                    plans = await _db(organisation_plans)() if changed - set(self.plans) else self.plans
                    await self._reload(plans, changed)
                if time.monotonic() - reloaded_at >= FULL_RELOAD_SECONDS:
                    reloaded_at = plans_at = time.monotonic()
                    await self._reload(await _db(organisation_plans)())
                    if self._ready:
                        await self._take_over_deliveries()
                elif time.monotonic() - plans_at >= PLANS_REFRESH_SECONDS:
                    plans_at = time.monotonic()
                    plans = await _db(organisation_plans)()
                    await self._reload(plans, {s for s, plan in plans.items() if self.plans.get(s) != plan})
            except Exception:
                logger.exception("could not follow alert changes; trying again")

    async def _reload(self, plans: dict[str, OrganisationPlan], schemas: set[str] | None = None) -> None:
        """Read these organisations' alerts (every organisation's when None) and put them in the index.

        The reads run on a worker thread; the index changes here, on the loop, between two batches.
        Organisations missing from `plans` (deleted) leave the index.
        """
        loaded: dict[str, SchemaAlerts] = (
            await _db(alerts_load)(plans=plans, schemas=schemas) if schemas != set() else {}
        )
        self.plans = plans
        before = self.index.watched()
        gone = self.index.schemas - set(plans)
        if schemas is None:
            gone |= self.index.schemas - set(loaded)
        for schema in gone:
            self.index.schema_remove(schema)
        for schema, alerts in loaded.items():
            self.index.schema_replace(schema, alerts.plan.delay_minutes, alerts.rules, alerts.quiet_until)
        if self.index.watched() != before:
            self._watch_dirty.set()

    # -- the watch registry -----------------------------------------------------------------------------
    def _watches(self) -> StreamState:
        if self._state is None:
            self._state = stream_state()
        return self._state

    async def _keep_watches(self) -> None:
        """The feed quotes what the alerts need: (delay, symbol) pairs under WATCH_SCHEMA, kept alive.

        The whole set is written when it changes (rarely: alerts are edited by people), which bumps the
        registry's version; otherwise its expiry is only extended, as web processes do (streaming.hub).
        """
        while True:
            try:
                async with asyncio.timeout(WATCH_HEARTBEAT_SECONDS):
                    await self._watch_dirty.wait()
            except TimeoutError:
                try:
                    if await self._watches().watches_touch(self.process_id) or not self.index.books:
                        continue
                except Exception:
                    logger.exception("could not extend the alert watches' expiry")
            self._watch_dirty.clear()
            watches = {Watch(WATCH_SCHEMA, delay, symbol) for delay, symbol in self.index.watched()}
            try:
                await self._watches().watches_update(self.process_id, watches, set(), full=True)
            except Exception:
                logger.exception("could not register the alerts' watches; retrying")
                await asyncio.sleep(LOAD_RETRY_SECONDS)
                self._watch_dirty.set()

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("alert engine task %s failed", task.get_name(), exc_info=task.exception())
