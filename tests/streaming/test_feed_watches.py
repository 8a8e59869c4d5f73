"""The feed follows the watch registry: a watch registered while a new leader reads it is not missed."""

import asyncio
from collections.abc import Iterable

import pytest
from channels.layers import InMemoryChannelLayer

from streaming.feed import WATCH_REFRESH_SECONDS, Feed
from streaming.providers import SimulatedProvider
from streaming.state import Watch
from streaming.state.memory import MemoryStreamState

pytestmark = pytest.mark.asyncio


class RegisteredMeanwhile(MemoryStreamState):
    """A registry in which another process registers a watch just after the feed's first read of it."""

    def __init__(self, late: Watch) -> None:
        super().__init__()
        self.late: Watch | None = late

    async def watch_keys(self) -> set[str]:
        keys = await super().watch_keys()
        if self.late is not None:
            late, self.late = self.late, None
            await self.watches_update("alerts-engine", {late}, set(), full=False)
        return keys


class Asked(SimulatedProvider):
    """The simulated provider, telling when it is asked for a symbol."""

    def __init__(self, symbol: str) -> None:
        super().__init__(ticks_per_second=400, seed=7)
        self.symbol, self.asked = symbol, asyncio.Event()

    async def subscribe(self, symbols: Iterable[str]) -> None:
        symbols = list(symbols)
        await super().subscribe(symbols)
        if self.symbol in symbols:
            self.asked.set()


async def test_a_watch_registered_while_the_leader_reads_the_registry_is_quoted_at_once() -> None:
    state = RegisteredMeanwhile(Watch("_alerts", 0, "MSFT"))
    await state.watches_update("web-1", {Watch("acme", 0, "AAPL")}, set(), full=True)
    provider = Asked("MSFT")
    feed = Feed(provider, state, InMemoryChannelLayer())
    running = asyncio.create_task(feed.run())
    try:
        async with asyncio.timeout(2):  # the safety-net refresh would take WATCH_REFRESH_SECONDS
            await provider.asked.wait()
    finally:
        feed.stop()
        async with asyncio.timeout(5):
            await running

    assert WATCH_REFRESH_SECONDS > 2
    assert feed.index.symbols == {"AAPL", "MSFT"}
