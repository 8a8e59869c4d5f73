"""Observers of the feed (minute bars, alerts) hear every published batch: realtime and per delay."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers

from streaming.feed import Feed
from streaming.providers import SimulatedProvider
from streaming.quotes import Quote
from streaming.state import stream_state
from tests.streaming import conftest as streaming_fixtures
from tests.streaming.conftest import Committed, connect, receive, receive_until

committed, hub_cleanup = streaming_fixtures.committed, streaming_fixtures.hub_cleanup


class Recorder:
    def __init__(self) -> None:
        self.batches: list[tuple[int, dict[str, Quote]]] = []

    async def observe(self, delay_minutes: int, quotes: dict[str, Quote]) -> None:
        self.batches.append((delay_minutes, dict(quotes)))


class Broken:
    async def observe(self, delay_minutes: int, quotes: dict[str, Quote]) -> None:
        raise RuntimeError("an observer with a defect")


@pytest.fixture
async def observed_feed(hub_cleanup: None) -> AsyncIterator[tuple[Feed, Recorder]]:
    recorder = Recorder()
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    running = Feed(
        SimulatedProvider(ticks_per_second=400, seed=7), stream_state(), layer, observers=[Broken(), recorder]
    )
    task = asyncio.create_task(running.run())
    yield running, recorder
    running.stop()
    async with asyncio.timeout(10):
        await task


@pytest.mark.asyncio
async def test_observers_hear_realtime_and_delayed_batches_and_a_broken_one_harms_nothing(
    committed: Committed, observed_feed: tuple[Feed, Recorder]
) -> None:
    _, recorder = observed_feed
    pro, free = await committed.tenant("pro"), await committed.tenant("free")
    live = connect(pro.host, session=pro.session, query="symbols=AAPL")
    late = connect(free.host, session=free.session, query="symbols=MSFT")
    for ws in (live, late):
        await ws.connect()
        await receive(ws)
    await receive_until(live, "quotes")
    await receive_until(late, "quotes", within=3)
    await live.disconnect()
    await late.disconnect()
    realtime = [quotes for delay, quotes in recorder.batches if delay == 0]
    delayed = [quotes for delay, quotes in recorder.batches if delay == 15]
    assert any("AAPL" in quotes for quotes in realtime)
    assert any("MSFT" in quotes for quotes in delayed)
    assert all(isinstance(quote, Quote) for quotes in realtime + delayed for quote in quotes.values())
