"""What every vendor's websocket adapter shares: connect, authenticate, subscribe, read, reconnect.

An adapter (Alpaca, Finnhub, Polygon) subclasses VendorStreamProvider and supplies only its wire
protocol: the URL, the authentication exchange, the subscribe and unsubscribe messages, and how a
decoded frame becomes quotes (through a QuoteBook, which turns trades and bid/ask updates into SPEC
Quotes). This class keeps the connection: after a drop it reconnects with exponential backoff and
full jitter, authenticates again and re-subscribes every wanted symbol. A vendor's refusal (bad
key, connection cap, plan) becomes the provider's status for staff, never a crash or a tight loop.

Vendors have history: a newly subscribed symbol's trading day is back-filled from the vendor's REST
minute bars (`history_bars`), and live quotes extend it (streaming.providers.history), so `quote_at`
serves a delayed plan the quote of its delay from its first second, in a new feed leader too. A backfill
that fails (HTTP error, timeout, unreadable answer, a plan without history) is said in the status and
tried again with backoff; the live stream goes on meanwhile.
"""

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from core.tasks import cancel_until_done
from streaming.quotes import Quote

from .base import MarketDataProvider, ProviderStatus
from .history import Bar, QuoteHistory, change_fields

logger = logging.getLogger(__name__)

T = TypeVar("T")

QUEUE_BATCHES = 1000  # batches waiting for the feed; beyond it the oldest are dropped (quotes are conflated anyway)
WARN_EVERY_SECONDS = 10.0
STOP_WAIT_SECONDS = 2.0  # the connection task's close (a websocket close handshake) is not waited for longer


class VendorError(Exception):
    """The vendor refused something, in words for staff. `fatal` errors (a bad key, no entitlement)
    will not fix themselves: the provider then waits `FATAL_RETRY_SECONDS` before trying again."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def each_symbol(
    symbols: list[str], fetch: Callable[[str], Awaitable[T]], *, gate: asyncio.Semaphore
) -> dict[str, T]:
    """`fetch(symbol)` for every symbol, as many at once as the gate lets through (a vendor whose REST API
    takes one symbol per request); the first failure is raised once every request has ended."""

    async def one(symbol: str) -> T:
        async with gate:
            return await fetch(symbol)

    results = await asyncio.gather(*(one(symbol) for symbol in symbols), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return dict(zip(symbols, results, strict=True))  # type: ignore[arg-type]  # (no exception left)


def backoff_ceiling(first: float, most: float, attempt: int) -> float:
    """The longest pause before try `attempt` (1, 2, …): doubling from `first` up to `most` (the exponent
    capped: a float overflows)."""
    return min(most, first * 2 ** min(attempt - 1, 32))


@dataclass(slots=True)
class _Book:
    price: float = 0.0
    bid: float = 0.0
    ask: float = 0.0
    volume: int = 0
    previous_close: float | None = None


class QuoteBook:
    """Per symbol: the last trade price, bid and ask, the day's volume, and the previous close."""

    def __init__(self) -> None:
        self._books: dict[str, _Book] = {}

    def previous_close(self, symbol: str, close: float) -> None:
        self._books.setdefault(symbol, _Book()).previous_close = close

    def close_of(self, symbol: str) -> float | None:
        book = self._books.get(symbol)
        return book.previous_close if book is not None else None

    def volume_seed(self, symbol: str, volume: int) -> None:
        """The day's volume so far (from the backfilled bars), unless trades have been counted already."""
        book = self._books.setdefault(symbol, _Book())
        if not book.volume:
            book.volume = volume

    def trade(self, symbol: str, price: float, size: int, ts: int) -> Quote | None:
        book = self._books.setdefault(symbol, _Book())
        if not price > 0:
            return None
        book.price = price
        book.volume += max(size, 0)
        return self._quote(symbol, book, ts)

    def bid_ask(self, symbol: str, bid: float, ask: float, ts: int) -> Quote | None:
        book = self._books.setdefault(symbol, _Book())
        if bid > 0:
            book.bid = bid
        if ask > 0:
            book.ask = ask
        if not book.price and book.bid and book.ask:
            book.price = round((book.bid + book.ask) / 2, 4)  # no trade yet: the mid price
        return self._quote(symbol, book, ts) if book.price else None

    def forget(self, symbol: str) -> None:
        self._books.pop(symbol, None)

    @staticmethod
    def _quote(symbol: str, book: _Book, ts: int) -> Quote:
        # Bid and ask bracket the price, as SPEC's Quote promises (a stale side is replaced by the price).
        bid = book.bid if 0 < book.bid <= book.price else book.price
        ask = book.ask if book.ask >= book.price else book.price
        change, change_pct = change_fields(book.price, book.previous_close)
        return Quote(symbol, book.price, bid, ask, book.volume, change, change_pct, ts)


class VendorStreamProvider(MarketDataProvider):
    """A vendor's websocket as a MarketDataProvider (see the module docstring)."""

    name = "vendor"
    display_name = "the vendor"
    BACKOFF_FIRST_SECONDS = 1.0
    BACKOFF_MAX_SECONDS = 60.0
    FATAL_RETRY_SECONDS = 300.0
    OPEN_TIMEOUT_SECONDS = 10.0
    # The backoff starts over only after a connection that lasted this long: a vendor may accept the key
    # and drop the connection at once (Polygon's max_connections), which must not retry every second.
    STABLE_SECONDS = 30.0
    # subscribe() waits this long for the symbols' backfill before streaming them (it goes on afterwards):
    # their first live quotes then land after their history, and the bar recorder finds their day.
    HISTORY_WAIT_SECONDS = 5.0
    HISTORY_RETRY_FIRST_SECONDS = 5.0
    HISTORY_RETRY_MAX_SECONDS = 300.0
    HISTORY_TIMEOUT_SECONDS = 10.0  # per REST request for bars

    def __init__(self, *, url: str) -> None:
        self.url = url
        self.book = QuoteBook()
        self._wanted: set[str] = set()
        self._subscribed: set[str] = set()  # on the current, authenticated connection
        self._status = ProviderStatus(connected=False)
        self._queue: asyncio.Queue[list[Quote] | None] = asyncio.Queue(maxsize=QUEUE_BATCHES)
        self._socket: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
        self._malformed = 0
        self._warned_at = 0.0
        self.history = QuoteHistory()
        self._history_error: str | None = None
        self._history_tasks: set[asyncio.Task[None]] = set()
        self._history_retry: set[str] = set()  # symbols whose backfill failed, tried again after a pause
        self._history_retry_task: asyncio.Task[None] | None = None
        self._history_failures = 0  # backfills failed in a row: the backoff's exponent
        self._history_gap = False  # stopped once: the time away is back-filled on the next start

    # -- what an adapter supplies ---------------------------------------------------------------------
    def connect_url(self) -> str:
        return self.url

    async def authenticate(self, ws: ClientConnection) -> None:
        """Run the vendor's authentication exchange; raise VendorError when refused."""

    def subscribe_messages(self, symbols: list[str]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def unsubscribe_messages(self, symbols: list[str]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def handle(self, message: Any) -> list[Quote]:
        """Quotes from one decoded frame; may update the status (unserved symbols) or raise VendorError."""
        raise NotImplementedError

    async def previous_closes(self, symbols: list[str]) -> dict[str, float]:
        """Yesterday's close per symbol (for change and change %), from the vendor's REST API; {} if unknown."""
        return {}

    def handshake_refused(self, status: int) -> VendorError | None:
        """What an HTTP status refusing the websocket upgrade means (a vendor that takes the key in the URL
        refuses a bad one with 401), or None to treat the refusal as a lost connection."""
        return None

    async def history_bars(self, symbols: list[str], *, start_ms: int, end_ms: int) -> dict[str, list[Bar]]:
        """Each symbol's one-minute bars starting in [start_ms, end_ms), from the vendor's REST history (a
        symbol without bars may be left out). Raises on failure: VendorError (fatal: the plan has no
        history, which will not change soon), httpx.HTTPError, or ValueError/TypeError/LookupError for an
        answer that is not what the vendor documents."""
        return {}

    # -- MarketDataProvider ------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"provider-{self.name}")
        if self._history_gap and self._wanted:  # led before: the minutes while stopped are filled in
            self._history_start(sorted(self._wanted))
        self._history_gap = False

    async def stop(self) -> None:
        task, self._task = self._task, None
        retry, self._history_retry_task = self._history_retry_task, None
        tasks = [t for t in (task, retry, *self._history_tasks) if t is not None]
        if await cancel_until_done(tasks, STOP_WAIT_SECONDS):
            logger.warning("%s: the connection task still runs %s s after its cancellation", self.name,
                           STOP_WAIT_SECONDS)  # fmt: skip
        self._history_gap = True
        self._put(None)

    async def subscribe(self, symbols: Iterable[str]) -> None:
        new = sorted(set(symbols) - self._wanted)
        if not new:
            return
        self._wanted.update(new)
        backfill = self._history_start(new)
        await self._closes_load(new)
        await asyncio.wait({backfill}, timeout=self.HISTORY_WAIT_SECONDS)
        await self._send_subscriptions(new)

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone = sorted(set(symbols) & self._wanted)
        if not gone:
            return
        self._wanted.difference_update(gone)
        self._history_retry.difference_update(gone)
        for symbol in gone:
            self._status.unserved.pop(symbol, None)
            self.book.forget(symbol)
            self.history.forget(symbol)
        on_socket = [s for s in gone if s in self._subscribed]
        self._subscribed.difference_update(gone)
        if on_socket:
            await self._send(self.unsubscribe_messages(on_socket))

    async def quotes(self) -> AsyncIterator[list[Quote]]:
        while True:
            batch = await self._queue.get()
            if batch is None:
                return
            yield batch

    def status(self) -> ProviderStatus:
        errors = [e for e in (self._status.error, self._history_error) if e]
        return replace(self._status, unserved=dict(self._status.unserved), error="; ".join(errors) or None)

    @property
    def has_history(self) -> bool:
        return True

    def quote_at(self, symbol: str, ts_ms: int) -> Quote | None:
        return self.history.quote_at(symbol, ts_ms, self.book.close_of(symbol))

    # -- for adapters ----------------------------------------------------------------------------------
    def mark_unserved(self, symbols: Iterable[str], reason: str) -> None:
        for symbol in symbols:
            if symbol in self._wanted:
                self._status.unserved[symbol] = reason

    def mark_served(self, symbols: Iterable[str]) -> None:
        for symbol in symbols:
            self._status.unserved.pop(symbol, None)

    def wanted(self) -> set[str]:
        return set(self._wanted)

    # -- the connection ------------------------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        while True:
            delay: float | None = None
            up_since: float | None = None
            try:
                async with connect(
                    self.connect_url(), open_timeout=self.OPEN_TIMEOUT_SECONDS, max_size=2**23, proxy=None
                ) as ws:
                    await self.authenticate(ws)
                    self._socket, self._subscribed = ws, set()
                    self._status.connected, self._status.error = True, None
                    up_since = time.monotonic()
                    await self._send_subscriptions(sorted(self._wanted))
                    async for raw in ws:
                        self._receive(raw)
                    raise ConnectionError("the vendor closed the connection")
            except asyncio.CancelledError:
                raise
            except VendorError as exc:
                self._status.error = str(exc)
                delay = self.FATAL_RETRY_SECONDS if exc.fatal else None
                logger.warning("%s: %s", self.name, exc)
            except InvalidStatus as exc:  # (before InvalidHandshake, its base class)
                refusal = self.handshake_refused(exc.response.status_code)
                self._status.error = (
                    f"Connection to {self.display_name} lost: {exc}" if refusal is None else str(refusal)
                )
                delay = self.FATAL_RETRY_SECONDS if refusal is not None and refusal.fatal else None
                logger.warning("%s: %s", self.name, self._status.error)
            except (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, TimeoutError, ConnectionError) as exc:
                self._status.error = f"Connection to {self.display_name} lost: {exc or type(exc).__name__}"
                logger.warning("%s: %s", self.name, self._status.error)
            except Exception as exc:  # a defect in an adapter: reported and retried, never the end of the feed
                self._status.error = f"Unexpected error reading {self.display_name}: {exc!r}"
                logger.exception("%s: unexpected error; reconnecting", self.name)
            finally:
                self._socket = None
                self._status.connected = False
            self._status.reconnects += 1
            if up_since is not None and time.monotonic() - up_since >= self.STABLE_SECONDS:
                attempt = 0
            attempt += 1
            if delay is None:  # exponential backoff with full jitter (the exponent capped: a float overflows)
                ceiling = backoff_ceiling(self.BACKOFF_FIRST_SECONDS, self.BACKOFF_MAX_SECONDS, attempt + 1)
                delay = random.uniform(0, ceiling)  # noqa: S311
            await asyncio.sleep(delay)

    def _receive(self, raw: str | bytes) -> None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._malformed += 1
            self._warn(f"{self._malformed} malformed frames from {self.display_name} so far (skipped)")
            return
        try:
            quotes = self.handle(message)
        except VendorError:
            raise
        except (LookupError, TypeError, ValueError, AttributeError) as exc:  # (LookupError: KeyError, IndexError)
            self._malformed += 1
            self._warn(f"{self._malformed} frames from {self.display_name} could not be read so far: {exc!r}")
            return
        if quotes:
            self._status.last_quote_ms = now_ms()
            for quote in quotes:
                self.history.record(quote)
            self._put(quotes)

    def _put(self, batch: list[Quote] | None) -> None:
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
        self._queue.put_nowait(batch)

    def _warn(self, message: str) -> None:
        if time.monotonic() - self._warned_at > WARN_EVERY_SECONDS:
            self._warned_at = time.monotonic()
            logger.warning("%s: %s", self.name, message)

    async def _send_subscriptions(self, symbols: list[str]) -> None:
        if self._socket is None or not symbols:
            return  # subscribed once connected (and again after every reconnect)
        # Only what is still wanted: an unsubscribe may have come while subscribe() awaited the closes.
        fresh = [s for s in symbols if s in self._wanted and s not in self._subscribed]
        self._subscribed.update(fresh)
        if fresh:
            await self._send(self.subscribe_messages(fresh))

    async def _send(self, messages: list[dict[str, Any]]) -> None:
        ws = self._socket
        if ws is None:
            return
        async with self._send_lock:
            try:
                for message in messages:
                    await ws.send(orjson.dumps(message).decode())
            except ConnectionClosed:
                pass  # the read loop sees the drop and reconnects, re-subscribing everything

    async def _closes_load(self, symbols: list[str]) -> None:
        try:
            closes = await self.previous_closes(symbols)
        except Exception as exc:  # a REST hiccup must not stop streaming; change is then 0 for these
            self._warn(f"previous closes from {self.display_name} unavailable: {exc!r}")
            return
        for symbol, close in closes.items():
            self.book.previous_close(symbol, close)

    # -- history -------------------------------------------------------------------------------------
    def _history_start(self, symbols: list[str]) -> asyncio.Task[None]:
        task = asyncio.create_task(self._history_load(symbols), name=f"provider-{self.name}-history")
        self._history_tasks.add(task)
        task.add_done_callback(self._history_tasks.discard)
        return task

    async def _history_load(self, symbols: list[str]) -> None:
        """Back-fill the symbols' trading day; a failure is said in the status and tried again later."""
        end = now_ms()
        start = end - self.history.keep_ms - 60_000  # a minute more: the day's first bar is then complete
        try:
            bars = await self.history_bars(symbols, start_ms=start, end_ms=end)
        except VendorError as exc:
            self._history_failed(symbols, str(exc), fatal=exc.fatal)
            return
        # (An unreadable JSON answer is a ValueError; one of another shape a TypeError, LookupError or AttributeError.)
        except (httpx.HTTPError, OSError, ValueError, TypeError, LookupError, AttributeError) as exc:
            self._history_failed(symbols, f"history from {self.display_name} unavailable: {exc!r}", fatal=False)
            return
        for symbol in symbols:
            if symbol in self._wanted:  # (not unsubscribed meanwhile)
                self.book.volume_seed(symbol, self.history.backfill(symbol, bars.get(symbol, ()), until=end))
        self._history_retry.difference_update(symbols)
        if not self._history_retry:
            self._history_error, self._history_failures = None, 0

    def _history_failed(self, symbols: list[str], message: str, *, fatal: bool) -> None:
        self._history_retry.update(s for s in symbols if s in self._wanted)
        self._history_failures += 1
        if fatal:
            delay = self.FATAL_RETRY_SECONDS
        else:  # exponential backoff, jittered over its upper half (never a tight loop)
            ceiling = backoff_ceiling(
                self.HISTORY_RETRY_FIRST_SECONDS, self.HISTORY_RETRY_MAX_SECONDS, self._history_failures
            )
            delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311
        self._history_error = f"{message}; history tried again in {delay:.0f} s"
        logger.warning("%s: %s", self.name, self._history_error)
        if self._history_retry_task is None or self._history_retry_task.done():
            self._history_retry_task = asyncio.create_task(
                self._history_again(delay), name=f"provider-{self.name}-history-retry"
            )

    async def _history_again(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._history_retry_task = None  # a failure now schedules the next try
        symbols = sorted(self._history_retry & self._wanted)
        self._history_retry.clear()
        if symbols:
            await self._history_load(symbols)
