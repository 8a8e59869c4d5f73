"""The feed: reads the provider and publishes quotes to the organisations that watch them.

One `run_feed` process leads (a lock with expiry in the shared state); the others stand by and
take over when the lock lapses. The leader asks the provider only for watched symbols, keeps the
last-quote cache, and serves delayed plans: from the provider's history when it has one (the quote
of `delay` ago, at once and across failovers), otherwise by holding quotes back in per-delay
buffers. Every second it stores its status (provider, connection, last quote) for connections and staff.
Observers (minute bars, alerts) hear every published batch.
"""

import asyncio
import bisect
import contextlib
import dataclasses
import logging
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Protocol, runtime_checkable

import orjson
from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer
from django.conf import settings

from billing.events import organisations_grace_expired_notify
from core.tasks import cancel_until_done, where

from .feed_changes import FeedChanges
from .groups import quotes_group
from .layers import group_send_many
from .market_hours import MarketHours, MarketState
from .providers import MarketDataProvider
from .quotes import Quote
from .state import StreamState, Watch

logger = logging.getLogger(__name__)

LEADER_TTL_MS = 3000
LEADER_RENEW_SECONDS = 1.0
STANDBY_POLL_SECONDS = 0.5
WATCH_REFRESH_SECONDS = 30.0  # a safety net: every change bumps the registry's version
WATCH_POLL_SECONDS = 0.1
WATCH_READ_MIN_SECONDS = 0.5
WATCHES_PARSED_ON_LOOP = 2000  # a bigger change of the watch registry is parsed in a thread
DELAY_SAMPLE_MS = 1000  # delayed plans get at most one quote per symbol per second
DELAY_RELEASE_SECONDS = 0.1
STATUS_EVERY_SECONDS = 1.0
MARKET_CHECK_SECONDS = 5.0  # the trading calendar is asked this often
OBSERVER_RETRY_SECONDS = 5.0  # an observer's own work that failed starts again after this pause
STATUS_TTL_MS = 5000  # no status for this long: no leader is running
SHUTDOWN_SECONDS = 2.0
# The leader, one process for the whole cluster, also ends the grace period of past-due organisations
# (their open streams then close with 4402): a minute late at most.
GRACE_CHECK_SECONDS = 60.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def delay_ms(delay_minutes: int) -> int:
    """A plan's delay in milliseconds (tests may shorten a "minute" with STREAM_DELAY_MINUTE_SECONDS)."""
    return int(delay_minutes * settings.STREAM_DELAY_MINUTE_SECONDS * 1000)


class QuoteObserver(Protocol):
    """Something the leader tells of each published batch: the quotes (latest per symbol) and their
    delay (0 = realtime). Called in the publishing loop: quick work only, queue anything slow."""

    async def observe(self, delay_minutes: int, quotes: dict[str, Quote]) -> None: ...


@runtime_checkable
class LeadingObserver(QuoteObserver, Protocol):
    """An observer with work of its own while this process leads (the bar recorder stores its bars and
    fills in history from the provider): `lead` runs as a task of the leadership, cancelled at its end."""

    async def lead(self, provider: MarketDataProvider) -> None: ...


@runtime_checkable
class CountingObserver(QuoteObserver, Protocol):
    """An observer whose totals go into the feed's status (alerts fired, webhooks sent): `counts` is cheap."""

    def counts(self) -> dict[str, int]: ...


@dataclass(frozen=True)
class WatchIndex:
    """Who watches what: symbol → organisations (sorted), for realtime and for each delay.

    Never changed in place: `changed` makes the next index, sharing every part the change leaves alone,
    so a loop that awaits while it walks `by_delay` keeps seeing one consistent index.
    """

    by_delay: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    watches_per_schema: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, watches: Iterable[Watch]) -> "WatchIndex":
        return cls().changed(watches, ())

    def changed(self, added: Iterable[Watch], removed: Iterable[Watch]) -> "WatchIndex":
        """This index with `added` watches in and `removed` ones out: work in proportion to the change,
        not to the index (a storm of new viewers changes a few watches at a time among tens of thousands)."""
        by_delay, per_schema = dict(self.by_delay), dict(self.watches_per_schema)
        own_delays: set[int] = set()  # the parts this change copied, so may change
        own_lists: set[tuple[int, str]] = set()

        def schemas_of(delay: int, symbol: str) -> list[str]:
            if delay not in own_delays:
                by_delay[delay] = dict(by_delay.get(delay, {}))
                own_delays.add(delay)
            if (delay, symbol) not in own_lists:
                by_delay[delay][symbol] = list(by_delay[delay].get(symbol, ()))
                own_lists.add((delay, symbol))
            return by_delay[delay][symbol]

        for schema, delay, symbol in removed:
            schemas = schemas_of(delay, symbol)
            if schema in schemas:
                schemas.remove(schema)
                per_schema[schema] -= 1
        for schema, delay, symbol in added:
            schemas = schemas_of(delay, symbol)
            at = bisect.bisect_left(schemas, schema)
            if at == len(schemas) or schemas[at] != schema:
                schemas.insert(at, schema)
                per_schema[schema] = per_schema.get(schema, 0) + 1
        # Nothing left empty: a lookup of an unwatched symbol or delay finds nothing.
        for delay, symbol in own_lists:
            if not by_delay[delay][symbol]:
                del by_delay[delay][symbol]
        for delay in own_delays:
            if not by_delay[delay]:
                del by_delay[delay]
        return WatchIndex(by_delay, {schema: n for schema, n in per_schema.items() if n > 0})

    @property
    def symbols(self) -> set[str]:
        return {symbol for symbols in self.by_delay.values() for symbol in symbols}

    @cached_property
    def schemas_by_symbol(self) -> dict[str, set[str]]:
        """Symbol → the organisations that watch it at any delay (built when first asked, once per index)."""
        schemas: dict[str, set[str]] = defaultdict(set)
        for symbols in self.by_delay.values():
            for symbol, watchers in symbols.items():
                schemas[symbol].update(watchers)
        return dict(schemas)

    @property
    def schemas(self) -> set[str]:
        return set(self.watches_per_schema)


@dataclass
class DelayBuffer:
    """Quotes held back for one delay, oldest first, sampled per symbol."""

    delay_minutes: int
    queue: deque[tuple[int, str, bytes]] = field(default_factory=deque)
    last_sampled: dict[str, int] = field(default_factory=dict)

    def add(self, quote: Quote, encoded: bytes) -> bool:
        """Keep the quote if its symbol has none in the last sample period; True for a new symbol."""
        previous = self.last_sampled.get(quote.symbol)
        if previous is not None and quote.ts - previous < DELAY_SAMPLE_MS:
            return False
        self.last_sampled[quote.symbol] = quote.ts
        self.queue.append((quote.ts, quote.symbol, encoded))
        return previous is None

    def due(self, now_ms: int) -> dict[str, bytes]:
        """Pop every quote that is at least the delay old; the latest per symbol."""
        cutoff = now_ms - delay_ms(self.delay_minutes)
        released: dict[str, bytes] = {}
        while self.queue and self.queue[0][0] <= cutoff:
            _, symbol, encoded = self.queue.popleft()
            released[symbol] = encoded
        return released


class Feed:
    """Leader election around the publishing loop."""

    market_check_seconds = MARKET_CHECK_SECONDS  # tests that move a fake clock ask more often

    def __init__(
        self,
        provider: MarketDataProvider,
        state: StreamState,
        layer: BaseChannelLayer,
        *,
        market_hours: MarketHours | None = None,
        observers: Sequence[QuoteObserver] = (),
    ) -> None:
        self.provider = provider
        # With trading hours (MARKET_HOURS), nothing is published while the exchange is closed.
        self.market_hours = market_hours
        # Told of every batch published, realtime and per delay (minute bars, alerts): see QuoteObserver.
        self.observers = list(observers)
        self.market: MarketState | None = None  # unknown until the calendar is first read: nothing is published
        self._calendar_failed = False
        self.state = state
        self.layer = layer
        self.holder = f"feed-{uuid.uuid4().hex[:12]}"
        self.index = WatchIndex()
        self._watch_keys: set[str] = set()  # the registry as last read, for the next read's difference
        self.buffers: dict[int, DelayBuffer] = {}
        self.published = 0  # quotes sent to organisations (one per organisation and quote)
        self.received = 0  # quotes the provider gave
        self.last_publish_ms: int | None = None
        self._live: dict[str, Quote] = {}  # latest quote per symbol since the last publish
        self._live_arrived = asyncio.Event()
        # Quotes that arrive within this window go out together: one message per organisation per
        # window, however often the provider delivers (a vendor socket may send every tick on its
        # own). The web processes write what a message brings at once, so this window is also the
        # shortest time between two frames of one connection (STREAM_FRAME_MS).
        self.publish_window = settings.STREAM_FRAME_MS / 1000
        self._stopping = asyncio.Event()
        self._status_due = asyncio.Event()  # the market opened or closed: store the status (and tell) now
        self.changes = FeedChanges()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Stand by until this process holds the lock, lead until it loses it, repeat until stopped."""
        while not self._stopping.is_set():
            if await self._lock_taken():
                logger.info("%s leads the feed (provider: %s)", self.holder, self.provider.name)
                try:
                    await self._lead()
                finally:
                    await self.provider.stop()
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(SHUTDOWN_SECONDS):
                            await self.state.leader_release(self.holder)
                logger.info("%s stopped leading", self.holder)
            else:
                await self._sleep(STANDBY_POLL_SECONDS)

    async def _lock_taken(self) -> bool:
        """Whether this process holds the leader lock now; False while Redis cannot be reached.

        A Redis restart must not end the process (leader and standbys alike would exit, and no
        quote would flow again until someone started a feed): it stands by and asks again.
        """
        try:
            return await self.state.leader_acquire(self.holder, LEADER_TTL_MS)
        except Exception:
            logger.exception("%s could not ask for the leader lock; asking again", self.holder)
            return False

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def _lead(self) -> None:
        self.changes = FeedChanges.from_status(await self.state.feed_status())
        await self.state.delay_history_reset()
        self.buffers.clear()
        await self.provider.start()
        self.index, self._watch_keys = WatchIndex(), set()  # the provider starts with no symbol
        # The version first: a watch registered while the index is being read bumps it past this one.
        version = await self.state.watches_version()
        await self._refresh_watches()
        tasks = [
            asyncio.create_task(self._keep_leadership(), name="feed-leadership"),
            asyncio.create_task(self._follow_watches(version), name="feed-watches"),
            asyncio.create_task(self._read_live(), name="feed-read"),
            asyncio.create_task(self._publish_live(), name="feed-live"),
            asyncio.create_task(
                self._delayed_from_history() if self.provider.has_history else self._release_delayed(),
                name="feed-delayed",
            ),
            asyncio.create_task(self._store_status(), name="feed-status"),
            *(
                asyncio.create_task(self._observer_lead(observer), name=f"feed-{type(observer).__name__}")
                for observer in self.observers
                if isinstance(observer, LeadingObserver)
            ),
            asyncio.create_task(self._follow_market(), name="feed-market"),
            asyncio.create_task(self._end_payment_graces(), name="feed-grace"),
            asyncio.create_task(self._stopping.wait(), name="feed-stop"),
        ]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # Bounded: a task that will not stop must not keep this process from standing by (or exiting).
        stuck = await cancel_until_done(pending, SHUTDOWN_SECONDS)
        if stuck:
            logger.warning("feed tasks still running %s s after their cancellation: %s", SHUTDOWN_SECONDS,
                           "; ".join(map(where, stuck)))  # fmt: skip
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                logger.error("feed task %s failed", task.get_name(), exc_info=task.exception())

    async def _end_payment_graces(self) -> None:
        end_graces = database_sync_to_async(organisations_grace_expired_notify, thread_sensitive=False)
        while True:
            await asyncio.sleep(GRACE_CHECK_SECONDS)
            try:
                ended = await end_graces()
            except Exception:  # the database may be away: the next check tries again
                logger.exception("could not check payment grace periods")
                continue
            for organisation in ended:
                logger.info("%s: payment grace ended, streams paused", organisation.slug)

    async def _keep_leadership(self) -> None:
        while True:
            await asyncio.sleep(LEADER_RENEW_SECONDS)
            if not await self.state.leader_acquire(self.holder, LEADER_TTL_MS):
                logger.warning("%s lost the feed lock; standing by", self.holder)
                return

    async def _follow_watches(self, version: int) -> None:
        """Refresh the watch index when any web process changed its watches (the registry's version
        moved past `version`, the one read before the index was), and every few seconds."""
        last_refresh = time.monotonic()
        while True:
            await asyncio.sleep(WATCH_POLL_SECONDS)
            current = await self.state.watches_version()
            if current != version or time.monotonic() - last_refresh > WATCH_REFRESH_SECONDS:
                version, last_refresh = current, time.monotonic()
                await self._refresh_watches(catch_up=True)
                # A lone change is read within WATCH_POLL_SECONDS; a storm of connects, which changes the
                # registry all the time, is read at most this often (each read is the whole registry).
                await asyncio.sleep(WATCH_READ_MIN_SECONDS - WATCH_POLL_SECONDS)

    async def _refresh_watches(self, *, catch_up: bool = False) -> None:
        """The index after what changed in the registry since the last read: a storm of connects changes
        it ten times a second, a few watches at a time among tens of thousands (parsing them all each
        time took half a core)."""
        keys = await self.state.watch_keys()
        added, removed = keys - self._watch_keys, self._watch_keys - keys
        if not (added or removed):
            return
        self._watch_keys = keys
        change = partial(self.index.changed, map(Watch.from_key, added), map(Watch.from_key, removed))
        before = self.index
        # A new leader's first read: tens of thousands of watches, parsed off the event loop.
        self.index = await asyncio.to_thread(change) if len(added) + len(removed) > WATCHES_PARSED_ON_LOOP else change()
        if catch_up and (newcomers := self.index.schemas - before.schemas):
            await group_send_many(self.layer, self.changes.catch_up(newcomers, self.index.schemas_by_symbol))
        symbols_before, symbols_after = before.symbols, self.index.symbols
        if symbols_after - symbols_before:
            await self.provider.subscribe(sorted(symbols_after - symbols_before))
        if symbols_before - symbols_after:
            await self.provider.unsubscribe(sorted(symbols_before - symbols_after))
        if not self.provider.has_history:
            for delay in self.index.by_delay:
                if delay and delay not in self.buffers:
                    self.buffers[delay] = DelayBuffer(delay)

    async def _read_live(self) -> None:
        """Collect the provider's quotes, the latest per symbol, until the publisher takes them."""
        async for batch in self.provider.quotes():
            self.received += len(batch)
            for quote in batch:
                self._live[quote.symbol] = quote
            self._live_arrived.set()

    async def _publish_live(self) -> None:
        """At most once per window: store and send what arrived; a slow send widens the next batch."""
        while True:
            await self._live_arrived.wait()
            self._live_arrived.clear()
            started = time.monotonic()
            latest, self._live = self._live, {}
            if not self.market_open:
                continue  # the exchange is closed: the last quotes stand
            encoded = {symbol: quote.encode() for symbol, quote in latest.items()}
            await self.state.last_quotes_store(0, encoded)
            await self._send(self.index.by_delay.get(0, {}), encoded)
            await self._notify(0, latest)
            self.last_publish_ms = now_ms()
            await self._hold_back(latest, encoded)
            await asyncio.sleep(self.publish_window - (time.monotonic() - started))

    async def _hold_back(self, latest: dict[str, Quote], encoded: dict[str, bytes]) -> None:
        for delay, buffer in self.buffers.items():
            watched = self.index.by_delay.get(delay, {})
            started = {s: q.ts for s, q in latest.items() if s in watched and buffer.add(q, encoded[s])}
            if started:
                await self.state.delay_history_started(delay, started)

    async def _delayed_from_history(self) -> None:
        """Each delayed watch gets, once a second, its symbol's quote of `delay` ago (new watches at once)."""
        sampled: dict[tuple[int, str], int] = {}
        while True:
            now = now_ms()
            for delay, watchers in list(self.index.by_delay.items()):
                if not delay or not self.market_open:
                    continue
                due = [s for s in watchers if now - sampled.get((delay, s), 0) >= DELAY_SAMPLE_MS]
                quotes = {s: q for s in due if (q := self.provider.quote_at(s, now - delay_ms(delay))) is not None}
                for symbol in due:
                    sampled[delay, symbol] = now
                if quotes:
                    encoded = {symbol: quote.encode() for symbol, quote in quotes.items()}
                    await self.state.last_quotes_store(delay, encoded)
                    await self._send(watchers, encoded)
                    await self._notify(delay, quotes)
            if len(sampled) > 4 * max(1, sum(len(w) for w in self.index.by_delay.values())):
                watched = {(d, s) for d, w in self.index.by_delay.items() for s in w}
                sampled = {key: at for key, at in sampled.items() if key in watched}
            await asyncio.sleep(DELAY_RELEASE_SECONDS)

    @property
    def market_open(self) -> bool:
        if self.market_hours is None:
            return True
        if self.market is None:
            return self._calendar_failed  # a calendar that cannot be read does not stop the quotes
        return self.market.open

    async def _follow_market(self) -> None:
        """Ask the trading calendar each few seconds (off the event loop: it is slow on a new minute)."""
        if self.market_hours is None:
            await self._stopping.wait()
            return
        while True:
            before = self.market
            try:
                self.market = await asyncio.to_thread(self.market_hours.state)
                self._calendar_failed = False
            except Exception:  # a calendar that fails must not stop quotes: they flow as without hours
                logger.exception("the trading calendar could not be read")
                self.market, self._calendar_failed = None, True
            if self.market is not None and (before is None or before.open != self.market.open):
                self._status_due.set()
            await asyncio.sleep(self.market_check_seconds)

    async def _store_status(self) -> None:
        """What connections (a provider with history?) and staff (is the feed up?) read about the feed;
        then open connections are told if the market or the unserved symbols changed (stored first, so
        a connection opened meanwhile gets the new state in its snapshot, never the old one after it)."""
        while True:
            self._status_due.clear()
            status = self.provider.status()
            stored = {
                "holder": self.holder,
                "provider": self.provider.name,
                "history": self.provider.has_history,
                "connected": status.connected,
                "last_quote_ms": status.last_quote_ms or self.last_publish_ms,
                "last_publish_ms": self.last_publish_ms,
                "symbols": len(self.index.symbols),
                "unserved": status.unserved,
                "error": status.error,
                "reconnects": status.reconnects,
                "published": self.published,
                "received": self.received,
                "counts": self._observer_counts(),
                "market": self.market.as_dict() if self.market is not None else None,
                "stored_ms": now_ms(),
            }
            await self.state.feed_status_store(stored, STATUS_TTL_MS)
            told = dataclasses.replace(self.changes)
            changes = self.changes.messages(stored, self.index.schemas_by_symbol)
            try:
                await group_send_many(self.layer, changes)
            except Exception:  # the channel layer may be away: told again on the next round
                logger.exception("could not tell connections of a market or unserved-symbols change")
                self.changes = told
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STATUS_EVERY_SECONDS):
                    await self._status_due.wait()

    def _observer_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for observer in self.observers:
            if isinstance(observer, CountingObserver):
                counts.update(observer.counts())
        return counts

    async def _release_delayed(self) -> None:
        while True:
            await asyncio.sleep(DELAY_RELEASE_SECONDS)
            now = now_ms()
            for delay, buffer in list(self.buffers.items()):
                released = buffer.due(now)
                if released:
                    await self.state.last_quotes_store(delay, released)
                    await self._send(self.index.by_delay.get(delay, {}), released)
                    if self.observers:
                        await self._notify(delay, {s: Quote(**orjson.loads(data)) for s, data in released.items()})

    async def _observer_lead(self, observer: LeadingObserver) -> None:
        """An observer's own work for as long as this process leads; one that fails is logged and started
        again, never the end of the leadership."""
        while True:
            try:
                await observer.lead(self.provider)
            except Exception:
                logger.exception("feed observer %s failed; starting it again", type(observer).__name__)
            await asyncio.sleep(OBSERVER_RETRY_SECONDS)

    async def _notify(self, delay_minutes: int, quotes: dict[str, Quote]) -> None:
        """Tell each observer what was just published at this delay; one that fails is logged, not fatal."""
        for observer in self.observers:
            try:
                await observer.observe(delay_minutes, quotes)
            except Exception:
                logger.exception("feed observer %s failed on a batch", type(observer).__name__)

    async def _send(self, watchers: dict[str, list[str]], encoded: dict[str, bytes]) -> None:
        """One message per organisation with every quote of this batch that it watches."""
        per_schema: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
        for symbol, data in encoded.items():
            for schema in watchers.get(symbol, ()):
                per_schema[schema].append((symbol, data))
        published_at = time.time()  # the web processes' delivery latency starts here (see streaming.metrics)
        messages = [
            (quotes_group(schema), {"type": "quotes.batch", "quotes": quotes, "published_at": published_at})
            for schema, quotes in per_schema.items()
        ]
        await group_send_many(self.layer, messages)
        self.published += sum(len(quotes) for quotes in per_schema.values())
