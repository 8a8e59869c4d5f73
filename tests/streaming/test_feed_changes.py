"""The feed leader tells watching organisations' control groups when the market opens or closes and when
the source stops or starts serving a symbol: once per change, never while nothing changes."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer

from streaming.feed import Feed
from streaming.groups import control_group
from streaming.market_hours import MarketHours
from streaming.state import Watch
from streaming.state.memory import MemoryStreamState
from tests.streaming import market_support as market

pytestmark = pytest.mark.asyncio

QUIET_SECONDS = 1.5  # more than one round of the status (each second, and at once on a market change)


@dataclass
class Running:
    feed: Feed
    state: MemoryStreamState
    provider: market.ServingSome
    clock: market.MovableClock
    layer: InMemoryChannelLayer
    channels: dict[str, str]  # schema → a channel in its control group

    async def next(self, schema: str) -> dict[str, Any]:
        async with asyncio.timeout(5):
            return dict(await self.layer.receive(self.channels[schema]))

    async def nothing(self, schema: str) -> bool:
        try:
            async with asyncio.timeout(QUIET_SECONDS):
                await self.layer.receive(self.channels[schema])
        except TimeoutError:
            return True
        return False


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    state = MemoryStreamState()
    watches = {Watch("acme", 0, "AAPL"), Watch("acme", 15, "MSFT"), Watch("globex", 0, "MSFT")}
    await state.watches_update("web-1", watches, set(), full=True)
    layer = InMemoryChannelLayer()
    channels = {}
    for schema in ("acme", "globex", "initech"):
        channels[schema] = await layer.new_channel()
        await layer.group_add(control_group(schema), channels[schema])
    clock = market.MovableClock(market.TUESDAY_AFTERNOON)
    provider = market.ServingSome()
    feed = Feed(provider, state, layer, market_hours=MarketHours(now_ms=clock))
    feed.market_check_seconds = 0.05
    task = asyncio.create_task(feed.run())
    try:
        for _ in range(600):  # leading, and the calendar read (its first load takes seconds)
            if feed.market is not None and await state.feed_status() is not None:
                break
            await asyncio.sleep(0.05)
        assert feed.market is not None
        yield Running(feed, state, provider, clock, layer, channels)
    finally:
        feed.stop()
        async with asyncio.timeout(10):
            await task


async def test_an_open_market_that_stays_open_is_not_told(running: Running) -> None:
    assert running.feed.market is not None
    assert running.feed.market.open
    assert await running.nothing("acme")


async def test_the_close_and_the_next_open_are_told_once_to_each_watching_organisation(running: Running) -> None:
    running.clock.at_ms = market.TUESDAY_EVENING
    closed = {"type": "market.changed", "market": {"open": False, "last_close_ms": market.TUESDAY_CLOSE,
                                                   "next_open_ms": market.WEDNESDAY_OPEN}}  # fmt: skip
    assert await running.next("acme") == closed
    assert await running.next("globex") == closed
    assert await running.nothing("acme")  # still closed: said once
    assert await running.nothing("initech")  # watches nothing

    running.clock.at_ms = market.WEDNESDAY_OPEN + 60_000
    opened = await running.next("acme")
    assert opened["type"] == "market.changed"
    assert opened["market"]["open"] is True
    assert (await running.next("globex"))["market"]["open"] is True
    assert await running.nothing("globex")


async def test_a_symbol_the_source_stops_serving_is_told_to_its_watchers_then_its_return(running: Running) -> None:
    running.provider.unserved = {"AAPL": "symbol_limit"}
    assert await running.next("acme") == {
        "type": "unserved.changed",
        "symbols": ["AAPL"],
        "unserved": {"AAPL": "symbol_limit"},
    }
    assert await running.nothing("acme")  # unchanged since: said once
    assert await running.nothing("globex")  # does not watch AAPL

    running.provider.unserved = {}
    assert await running.next("acme") == {"type": "unserved.changed", "symbols": ["AAPL"], "unserved": {}}
    assert await running.nothing("acme")


async def test_an_organisation_that_starts_watching_while_closed_is_told_once(running: Running) -> None:
    running.clock.at_ms = market.TUESDAY_EVENING
    assert (await running.next("acme"))["market"]["open"] is False
    assert await running.nothing("initech")  # not watching yet

    await running.state.watches_update("web-2", {Watch("initech", 0, "TSLA")}, set(), full=False)
    caught_up = await running.next("initech")
    assert caught_up == {"type": "market.changed", "market": running.feed.changes.market}
    assert caught_up["market"]["open"] is False
    assert await running.nothing("initech")
    assert await running.nothing("acme")  # already told
