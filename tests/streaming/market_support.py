"""A feed whose market hours and unserved symbols a test moves: a clock for the real NYSE calendar, and
the simulated provider serving only what the test allows (as a vendor's symbol cap would)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from streaming.feed import Feed
from streaming.providers import SimulatedProvider
from streaming.providers.base import ProviderStatus
from streaming.quotes import Quote


def ms(year: int, month: int, day: int, hour: int, minute: int) -> int:
    """Epoch ms of a UTC moment."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


TUESDAY_AFTERNOON = ms(2026, 12, 1, 15, 0)  # 10:00 New York: open
TUESDAY_EVENING = ms(2026, 12, 1, 22, 0)  # 17:00 New York: closed since 16:00
TUESDAY_CLOSE = ms(2026, 12, 1, 21, 0)
WEDNESDAY_OPEN = ms(2026, 12, 2, 14, 30)


class MovableClock:
    """The MarketHours clock: stays where the test puts it."""

    def __init__(self, at_ms: int) -> None:
        self.at_ms = at_ms

    def __call__(self) -> int:
        return self.at_ms


class ServingSome(SimulatedProvider):
    """The simulated feed, with symbols the test declares unserved: no quotes for them, and the status
    names them with a reason, as a vendor adapter does for symbols beyond its cap."""

    def __init__(self) -> None:
        super().__init__(ticks_per_second=400, seed=7)
        self.unserved: dict[str, str] = {}

    def status(self) -> ProviderStatus:
        return ProviderStatus(unserved=dict(self.unserved))

    async def quotes(self) -> AsyncIterator[list[Quote]]:
        async for batch in super().quotes():
            served = [quote for quote in batch if quote.symbol not in self.unserved]
            if served:
                yield served


@dataclass
class MovableFeed:
    """A leading feed and the two things a test moves: the calendar's clock and the unserved symbols."""

    feed: Feed
    provider: ServingSome
    clock: MovableClock
