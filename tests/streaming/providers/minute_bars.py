"""Minute bars the vendor fakes serve from their REST history endpoints, in each vendor's shape."""

from typing import NamedTuple

MINUTE_MS = 60_000


class Bar(NamedTuple):
    """One minute: its start (epoch ms), open, high, low, close, volume."""

    t: int
    o: float
    h: float
    l: float  # noqa: E741 (the vendors' name)
    c: float
    v: int


def minute_bars(*, until_ms: int, minutes: int, first_close: float = 100.0, step: float = 0.25) -> list[Bar]:
    """`minutes` complete bars ending at the minute start at or before `until_ms`; closes rise by `step`,
    each bar opening at the previous close, its high and low 0.1 beyond."""
    last = until_ms - until_ms % MINUTE_MS - MINUTE_MS
    bars = []
    for i in range(minutes):
        close = round(first_close + i * step, 2)
        open_ = round(close - step, 2)
        bars.append(
            Bar(
                last - (minutes - 1 - i) * MINUTE_MS,
                open_,
                round(close + 0.1, 2),
                round(open_ - 0.1, 2),
                close,
                100 + i,
            )
        )
    return bars


def within(bars: list[Bar], start_ms: int, end_ms: int) -> list[Bar]:
    """The bars starting in [start_ms, end_ms], as vendors answer a range."""
    return [bar for bar in bars if start_ms <= bar.t <= end_ms]
