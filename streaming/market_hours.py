"""Trading hours (MARKET_HOURS): the NYSE calendar of exchange-calendars, holidays and early closes included.

With market hours on, the feed publishes no quotes while the exchange is closed, and connections
say "market closed" with the time of the last close and of the next open.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CALENDAR = "XNYS"
MINUTE_MS = 60_000


@dataclass(frozen=True)
class MarketState:
    open: bool
    last_close_ms: int | None
    next_open_ms: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"open": self.open, "last_close_ms": self.last_close_ms, "next_open_ms": self.next_open_ms}


class MarketHours:
    """Whether the exchange is open now; the calendar is asked at most once a minute (it is slow)."""

    def __init__(self, *, calendar: str = CALENDAR, now_ms: Callable[[], int] | None = None) -> None:
        self.calendar_name = calendar
        self.now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._calendar: Any = None
        self._cached: tuple[int, MarketState] | None = None

    def state(self) -> MarketState:
        """The market now (blocking on the first call of each minute: run it in a thread)."""
        minute = self.now_ms() // MINUTE_MS
        if self._cached is not None and self._cached[0] == minute:
            return self._cached[1]
        import exchange_calendars
        import pandas as pd

        if self._calendar is None:
            self._calendar = exchange_calendars.get_calendar(self.calendar_name)
        at = pd.Timestamp(minute * MINUTE_MS, unit="ms", tz="UTC")
        is_open = bool(self._calendar.is_open_on_minute(at))
        state = MarketState(
            open=is_open,
            last_close_ms=_ms(self._calendar.previous_close(at)),
            next_open_ms=None if is_open else _ms(self._calendar.next_open(at)),
        )
        self._cached = (minute, state)
        return state


def _ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)
