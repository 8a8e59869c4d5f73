"""A vendor stream's recent past in memory, so that `quote_at` can tell the quote of any moment of the day.

Per symbol, time-ordered points (epoch ms, price, bid, ask, the day's cumulative volume) in five
parallel arrays, 40 bytes a point. They come from two sources:

- the vendor's REST minute bars, each as four points: the open at the minute's start, the low and the
  high (in the order that ends nearest the close) at 15 s and 30 s, the close at 45 s, so that sampling
  the history every 5 s (streaming.bars.bars_from_history) rebuilds the bar's open, high, low, close and
  volume exactly;
- live quotes, at most one point a second per symbol (the last of each second: a minute's close is kept).

Points older than FINE_MS are thinned to the first, highest, lowest and last of their minute; points
older than KEEP_MS (a trading day) are dropped. A symbol quoted every second all day holds at most
MAX_POINTS points (about 110 KB); one known only from its bars, four a minute (about 62 KB a day).

`quote_at` is a binary search under a lock (the bar recorder reads from a worker thread while the event
loop records): a few microseconds.
"""

from __future__ import annotations  # array[...] in annotations: array is not subscriptable on 3.11

import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from streaming.quotes import Quote
from streaming.state.base import Bar

MINUTE_MS = 60_000
SAMPLE_MS = 1_000  # live quotes: one point a second per symbol
# Points this recent keep their one-a-second detail: a delayed plan's quote moves each second. 20 minutes
# cover the Free plan's 15-minute delay (billing's default delay_minutes) with room for the minute thinned.
FINE_MS = 20 * MINUTE_MS
# The trading day (6.5 hours, as streaming.state.BARS_KEPT): what the bar recorder fills in, and more than
# any plan's delay. The backfill asks the vendor for this much.
KEEP_MS = 390 * MINUTE_MS
POINT_BYTES = 5 * 8  # ts, volume (int64); price, bid, ask (float64)
# A bar's points within its minute: open, first extreme, second extreme, close.
BAR_OFFSETS_MS = (0, 15_000, 30_000, 45_000)
MAX_POINTS = (FINE_MS + MINUTE_MS) // SAMPLE_MS + 4 * ((KEEP_MS - FINE_MS) // MINUTE_MS + 1) + 1
EXCHANGE_ZONE = ZoneInfo("America/New_York")  # where a trading day (and its volume) starts


def _price(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"not a price: {value!r}")
    return float(value)


def minute_bar(t: Any, o: Any, h: Any, l: Any, c: Any, v: Any, *, t_unit_ms: int = 1) -> Bar:  # noqa: E741
    """A bar from a vendor's fields (its names; `t` in units of `t_unit_ms`), checked: ValueError for what is
    not a bar (a price <= 0, high < low)."""
    if isinstance(t, bool) or not isinstance(t, int | float) or isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"not a bar time and volume: {t!r}, {v!r}")
    bar = Bar(int(t * t_unit_ms), _price(o), _price(h), _price(l), _price(c), max(int(v), 0))
    if not bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high:
        raise ValueError(f"a bar whose prices are not inside its high and low: {bar}")
    return bar


def change_fields(price: float, previous_close: float | None) -> tuple[float, float]:
    """SPEC Quote's change and change % against the previous close (0 when unknown)."""
    if not previous_close:
        return 0.0, 0.0
    change = round(price - previous_close, 4)
    return change, round(change / previous_close * 100, 4)


def trading_day(ts_ms: int) -> date:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(EXCHANGE_ZONE).date()


class _Point(NamedTuple):
    ts: int
    price: float
    bid: float
    ask: float
    volume: int


def bar_points(bars: Iterable[Bar]) -> Iterator[_Point]:
    """Four points per bar (see the module docstring); the volume accumulates over each trading day."""
    cumulative, day = 0, None
    for bar in bars:
        if (bar_day := trading_day(bar.minute)) != day:
            cumulative, day = 0, bar_day
        extremes = (bar.low, bar.high) if bar.close >= bar.open else (bar.high, bar.low)
        prices = (bar.open, *extremes, bar.close)
        for offset, price in zip(BAR_OFFSETS_MS, prices, strict=True):
            volume = cumulative + bar.volume if offset == BAR_OFFSETS_MS[-1] else cumulative
            yield _Point(bar.minute + offset, price, price, price, volume)
        cumulative += bar.volume


@dataclass(slots=True)
class _Series:
    ts: array[int] = field(default_factory=lambda: array("q"))
    price: array[float] = field(default_factory=lambda: array("d"))
    bid: array[float] = field(default_factory=lambda: array("d"))
    ask: array[float] = field(default_factory=lambda: array("d"))
    volume: array[int] = field(default_factory=lambda: array("q"))
    thinned_to: int = 0  # points before this minute start are thinned

    def columns(self) -> tuple[array[Any], ...]:
        return self.ts, self.price, self.bid, self.ask, self.volume

    def point(self, i: int) -> _Point:
        return _Point(self.ts[i], self.price[i], self.bid[i], self.ask[i], self.volume[i])

    def replace(self, start: int, stop: int, points: list[_Point]) -> None:
        """Points [start, stop) become `points` (time-ordered, fitting between their neighbours)."""
        for column, values in zip(self.columns(), zip(*points, strict=True) if points else ((),) * 5, strict=True):
            column[start:stop] = array(column.typecode, values)


class QuoteHistory:
    """Recent points per symbol (see the module docstring); safe to read from another thread."""

    def __init__(self, *, fine_ms: int = FINE_MS, keep_ms: int = KEEP_MS) -> None:
        self.fine_ms = fine_ms
        self.keep_ms = keep_ms
        self._series: dict[str, _Series] = {}
        self._lock = threading.Lock()

    def record(self, quote: Quote) -> None:
        """A live quote: a new point, or the last one replaced when it falls in the same second."""
        with self._lock:
            series = self._series.setdefault(quote.symbol, _Series())
            ts, last = quote.ts, series.ts[-1] if series.ts else None
            point = _Point(ts, quote.price, quote.bid, quote.ask, quote.volume)
            if last is not None and ts // SAMPLE_MS <= last // SAMPLE_MS:
                # The same second (or out of order): the latest values stand for it, at the later time.
                series.replace(len(series.ts) - 1, len(series.ts), [point._replace(ts=max(ts, last))])
                return
            series.replace(len(series.ts), len(series.ts), [point])
            if last is not None and ts // MINUTE_MS != last // MINUTE_MS:
                self._compact(series)

    def backfill(self, symbol: str, bars: Iterable[Bar], *, until: int) -> int:
        """Merge the bars that ended by `until` where the symbol has no points (before the first one, or
        after the last: a gap while the stream was away). Returns the day's volume the bars add up to
        (0 unless the last bar is of `until`'s trading day)."""
        complete = sorted((b for b in bars if b.minute + MINUTE_MS <= until), key=lambda b: b.minute)
        points = list(bar_points(complete))
        if not points:
            return 0
        with self._lock:
            series = self._series.setdefault(symbol, _Series())
            if series.ts:
                first, last = series.ts[0], series.ts[-1]
                series.replace(len(series.ts), len(series.ts), [p for p in points if p.ts > last])
                series.replace(0, 0, [p for p in points if p.ts < first])
            else:
                series.replace(0, 0, points)
            self._compact(series)
        if trading_day(complete[-1].minute) != trading_day(until):
            return 0
        return points[-1].volume

    def quote_at(self, symbol: str, ts_ms: int, previous_close: float | None = None) -> Quote | None:
        """The symbol's quote as it was at `ts_ms`: its last point at or before then; None before the first."""
        with self._lock:
            series = self._series.get(symbol)
            if series is None:
                return None
            i = bisect_right(series.ts, ts_ms) - 1
            if i < 0:
                return None
            point = series.point(i)
        change, change_pct = change_fields(point.price, previous_close)
        return Quote(symbol, point.price, point.bid, point.ask, point.volume, change, change_pct, ts_ms)

    def forget(self, symbol: str) -> None:
        with self._lock:
            self._series.pop(symbol, None)

    def points(self, symbol: str) -> int:
        with self._lock:
            series = self._series.get(symbol)
            return len(series.ts) if series is not None else 0

    def nbytes(self, symbol: str) -> int:
        """Memory the symbol's points take (the arrays' items; their spare capacity is at most an eighth more)."""
        return self.points(symbol) * POINT_BYTES

    def _compact(self, series: _Series) -> None:
        """Thin the minutes that left the fine window; drop what is older than the day (one point before it
        stays: it is the quote of the day's first moments)."""
        newest = series.ts[-1]
        boundary = newest - self.fine_ms
        boundary -= boundary % MINUTE_MS
        if boundary > series.thinned_to:
            start, stop = bisect_left(series.ts, series.thinned_to), bisect_left(series.ts, boundary)
            kept = self._kept(series, start, stop)
            if len(kept) < stop - start:  # (bars are thin already: nothing to rewrite)
                series.replace(start, stop, [series.point(i) for i in kept])
            series.thinned_to = boundary
        cut = bisect_right(series.ts, newest - self.keep_ms) - 1
        if cut > 0:
            series.replace(0, cut, [])

    @staticmethod
    def _kept(series: _Series, start: int, stop: int) -> list[int]:
        """The indices of the first, highest, lowest and last points of each minute in [start, stop), in order."""
        kept: list[int] = []
        i = start
        while i < stop:
            minute = series.ts[i] - series.ts[i] % MINUTE_MS
            end = bisect_left(series.ts, minute + MINUTE_MS, i, stop)
            if end - i <= 4:
                kept.extend(range(i, end))
            else:
                prices = series.price[i:end]
                high = i + max(range(end - i), key=prices.__getitem__)
                low = i + min(range(end - i), key=prices.__getitem__)
                kept.extend(sorted({i, high, low, end - 1}))
            i = end
        return kept


__all__ = ["KEEP_MS", "MAX_POINTS", "POINT_BYTES", "Bar", "QuoteHistory", "change_fields", "minute_bar"]
