"""A feed whose market hours and unserved symbols a test moves: a clock for the real NYSE calendar, and
the simulated provider serving only what the test allows (as a vendor's symbol cap would)."""

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers

from streaming.feed import Feed
from streaming.market_hours import MarketHours
from streaming.providers import SimulatedProvider
from streaming.providers.base import ProviderStatus
from streaming.quotes import Quote
from streaming.state import stream_state
from tests.live import LEADER_WAIT_SECONDS


def ms(year: int, month: int, day: int, hour: int, minute: int) -> int:
    """Epoch ms of a UTC moment."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


TUESDAY_AFTERNOON = ms(2026, 12, 1, 15, 0)  # 10:00 New York: open
TUESDAY_EVENING = ms(2026, 12, 1, 22, 0)  # 17:00 New York: closed since 16:00
TUESDAY_CLOSE = ms(2026, 12, 1, 21, 0)
WEDNESDAY_OPEN = ms(2026, 12, 2, 14, 30)

CHANGE_SHOWN_MS = 5_000  # the feed tells at once; a page in a browser has a few seconds to show it


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


@contextmanager
def leading_from_a_thread() -> Iterator[MovableFeed]:
    """The real feed, leading from a thread of this process (its own event loop) so that the test moves
    its clock and its provider's unserved symbols while the web process and the browser are real ones,
    as in production; open on a Tuesday afternoon (the market open)."""
    clock, provider = MovableClock(TUESDAY_AFTERNOON), ServingSome()
    loop = asyncio.new_event_loop()
    made: list[Feed] = []
    created = threading.Event()

    async def lead() -> None:
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        feed = Feed(provider, stream_state(), layer, market_hours=MarketHours(now_ms=clock))
        feed.market_check_seconds = 0.05
        made.append(feed)
        created.set()
        await feed.run()

    thread = threading.Thread(target=loop.run_until_complete, args=(lead(),), name="movable-feed")
    thread.start()
    try:
        assert created.wait(10)
        feed = made[0]
        deadline = time.monotonic() + LEADER_WAIT_SECONDS + 20  # a lock left by an earlier test; the calendar's load
        while feed.market is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert feed.market is not None, "the test's feed never led"
        yield MovableFeed(feed, provider, clock)
    finally:
        if made:
            loop.call_soon_threadsafe(made[0].stop)
        thread.join(20)
        loop.close()
