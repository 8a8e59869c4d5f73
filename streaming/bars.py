"""Minute bars: one-minute open, high, low, close and volume per watched symbol, for a trading day.

The feed leader's `BarRecorder` (a feed observer) builds them from the realtime batches it publishes,
keeps the bar being built in memory and stores bars in the streaming state (Redis: the last BARS_KEPT
per symbol, expiring after a day). A provider with history fills in a newly seen symbol's day at once.
Bars are realtime: a plan with a delay sees only those whose minute ended at least the delay ago.
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from .feed import delay_ms, now_ms
from .providers import MarketDataProvider
from .quotes import Quote
from .state import BARS_KEPT, MINUTE_MS, Bar, StreamState, bars_sync, stream_state

logger = logging.getLogger(__name__)

# A provider's history is sampled every 5 s to make a bar: 12 quotes a minute make a plausible high and
# low (the simulated path's fastest wave lasts 47 s) at 70 ms of quote_at calls per symbol's day.
BACKFILL_STEP_MS = 5_000
BACKFILL_SLICE_SECONDS = 0.5  # filling in many new symbols yields to storing bars this often
TICK_SECONDS = 0.25  # completed bars and filled-in days are stored this soon
FLUSH_SECONDS = 2.0  # the bar being built is stored at least this often
IDLE_MS = 10 * MINUTE_MS  # a symbol without a quote for this long is forgotten (its bars are stored)
FINAL_FLUSH_SECONDS = 1.0


@dataclass(slots=True)
class BarBuilder:
    """One symbol's bar in the making: quotes, in time order, close a bar when a later minute starts.

    A bar's volume is how much the quote's cumulative (day) volume grew since the previous quote, summed
    over the minute; a cumulative volume that went down was reset (a new day) and counts from 0.
    """

    minute: int | None = None
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0
    volume: int = 0
    cumulative: int | None = None  # the last quote's cumulative volume

    def add(self, quote: Quote) -> Bar | None:
        """Count the quote in; the bar it completed, if it is the first of a later minute."""
        minute = quote.ts - quote.ts % MINUTE_MS
        if self.minute is not None and minute < self.minute:
            return None  # late: its minute is done
        previous, self.cumulative = self.cumulative, quote.volume
        traded = 0 if previous is None else quote.volume - previous if quote.volume >= previous else quote.volume
        price = quote.price
        if minute == self.minute:
            self.high, self.low, self.close = max(self.high, price), min(self.low, price), price
            self.volume += traded
            return None
        completed = self.bar()
        self.minute, self.open, self.high, self.low, self.close, self.volume = (
            minute,
            price,
            price,
            price,
            price,
            traded,
        )
        return completed

    def bar(self) -> Bar | None:
        """The bar so far (None before the first quote)."""
        if self.minute is None:
            return None
        return Bar(self.minute, self.open, self.high, self.low, self.close, self.volume)


def bars_from_history(provider: MarketDataProvider, symbol: str, *, until: int, count: int = BARS_KEPT) -> list[Bar]:
    """The `count` minute bars before `until` (a minute start, epoch ms) from the provider's quotes of every
    BACKFILL_STEP_MS, built as live quotes are; fewer where the provider has no quote."""
    first = until - count * MINUTE_MS
    builder = BarBuilder()
    bars: list[Bar] = []
    # From one step before the first minute (its volume then counts from there) to `until`, whose quote
    # completes the last bar.
    for ts in range(first - BACKFILL_STEP_MS, until + 1, BACKFILL_STEP_MS):
        quote = provider.quote_at(symbol, ts)
        if quote is not None and (bar := builder.add(quote)) is not None and bar.minute >= first:
            bars.append(bar)
    return bars


def bars_visible(
    *, symbols: list[str], delay_minutes: int, start_ms: int = 0, end_ms: int | None = None, now: int | None = None
) -> dict[str, list[Bar]]:
    """Each symbol's stored bars (oldest first) that a plan with this delay may see at `now` (default: now):
    those whose minute ended at least the delay ago (realtime: ended), starting in [start_ms, end_ms).
    Synchronous (views)."""
    last = (now_ms() if now is None else now) - delay_ms(delay_minutes) - MINUTE_MS  # the last minute start allowed
    if end_ms is not None:
        last = min(last, end_ms - 1)
    stored = bars_sync(symbols) if symbols else {}
    return {symbol: [bar for bar in bars if start_ms <= bar.minute <= last] for symbol, bars in stored.items()}


@dataclass(slots=True)
class _Series:
    """What the recorder holds for one symbol: the bar being built, completed bars not yet stored."""

    builder: BarBuilder
    first_minute: int  # the recorder's first minute of this symbol: its history ends there
    done: list[Bar] = field(default_factory=list)
    changed: bool = True
    ready: bool = True  # False while its day is to be filled in from history (nothing is stored before)


class BarRecorder:
    """A feed observer (QuoteObserver, LeadingObserver): minute bars of every symbol published realtime."""

    def __init__(self, state: StreamState | None = None) -> None:
        self._state = state  # None: the running loop's, taken when it leads
        self._provider: MarketDataProvider | None = None  # while leading, when it has history
        self._series: dict[str, _Series] = {}
        self._history_due: deque[str] = deque()

    async def observe(self, delay_minutes: int, quotes: dict[str, Quote]) -> None:
        """Count a realtime batch in (bars are realtime; delayed batches repeat the same quotes later)."""
        if delay_minutes:
            return
        for symbol, quote in quotes.items():
            series = self._series.get(symbol) or self._start(symbol, quote)
            completed = series.builder.add(quote)
            if completed is not None:
                series.done.append(completed)
                del series.done[:-BARS_KEPT]
            series.changed = True

    def _start(self, symbol: str, quote: Quote) -> _Series:
        minute = quote.ts - quote.ts % MINUTE_MS
        series = self._series[symbol] = _Series(BarBuilder(), minute)
        if self._provider is not None:
            # The minute so far from history (its open, the volume since its start), the day before it soon.
            start = self._provider.quote_at(symbol, minute)
            if start is not None:
                series.builder.add(start)
            series.ready = False
            self._history_due.append(symbol)
        return series

    async def lead(self, provider: MarketDataProvider) -> None:
        """While the feed leads: fill in new symbols' days, store bars, forget symbols no longer quoted."""
        self._forget_all()  # a new leadership starts afresh: its symbols' days are filled in again
        state = self._state or stream_state()
        self._provider = provider if provider.has_history else None
        flushed = time.monotonic()
        try:
            while True:
                await self._fill_in_history(state)
                everything = time.monotonic() - flushed >= FLUSH_SECONDS
                await self._store(state, everything=everything)
                if everything:
                    flushed = time.monotonic()
                    self._forget_idle()
                await asyncio.sleep(TICK_SECONDS)
        finally:
            # The last seconds of the bars being built; bounded, and a failure here loses only those.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(FINAL_FLUSH_SECONDS):
                    await self._store(state, everything=True)
            self._forget_all()

    async def _fill_in_history(self, state: StreamState) -> None:
        """Each newly seen symbol's day from the provider (off the event loop), for up to a time slice."""
        started = time.monotonic()
        while self._history_due and self._provider is not None:
            symbol = self._history_due.popleft()
            series = self._series.get(symbol)
            if series is None or series.ready:
                continue
            bars = await asyncio.to_thread(bars_from_history, self._provider, symbol, until=series.first_minute)
            await state.bars_replace({symbol: bars})
            series.ready = True
            if time.monotonic() - started >= BACKFILL_SLICE_SECONDS:
                return

    async def _store(self, state: StreamState, *, everything: bool) -> None:
        """Store completed bars; with `everything`, the bars being built too (only after a symbol's day is in)."""
        bars: dict[str, list[Bar]] = {}
        for symbol, series in self._series.items():
            if not series.ready or not series.changed or not (series.done or everything):
                continue
            current = series.builder.bar()
            bars[symbol] = [*series.done, current] if current is not None else series.done
            series.done, series.changed = [], False
        await state.bars_merge(bars)

    def _forget_idle(self) -> None:
        """Symbols no longer quoted (not watched any more) leave memory once their bars are stored."""
        oldest = now_ms() - IDLE_MS
        idle = [s for s, series in self._series.items() if not series.changed and (series.builder.minute or 0) < oldest]
        for symbol in idle:
            del self._series[symbol]

    def _forget_all(self) -> None:
        self._series.clear()
        self._history_due.clear()
        self._provider = None
