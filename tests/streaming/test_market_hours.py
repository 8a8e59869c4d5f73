"""Trading hours: the NYSE calendar decides; while closed the feed publishes nothing and snapshots say so."""

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers

from streaming.feed import Feed
from streaming.market_hours import MarketHours
from streaming.providers import SimulatedProvider
from streaming.state import stream_state
from tests.streaming import conftest as streaming_fixtures
from tests.streaming.conftest import Committed, connect, receive

committed, hub_cleanup = streaming_fixtures.committed, streaming_fixtures.hub_cleanup


def ms(year: int, month: int, day: int, hour: int, minute: int) -> int:
    """Epoch ms of a UTC moment."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def at(year: int, month: int, day: int, hour: int, minute: int) -> Callable[[], int]:
    """A clock stopped at a UTC moment."""
    stamp = ms(year, month, day, hour, minute)
    return lambda: stamp


SATURDAY = (2026, 11, 28, 15, 0)
TUESDAY_AFTERNOON = (2026, 12, 1, 15, 0)


def test_the_calendar_knows_weekends_holidays_and_early_closes() -> None:
    weekend = MarketHours(now_ms=at(*SATURDAY)).state()
    assert not weekend.open
    assert weekend.next_open_ms == ms(2026, 11, 30, 14, 30)  # Monday 9:30 New York
    assert weekend.last_close_ms == ms(2026, 11, 27, 18, 0)  # the day after Thanksgiving closes at 13:00
    assert not MarketHours(now_ms=at(2026, 11, 26, 15, 0)).state().open  # Thanksgiving
    assert MarketHours(now_ms=at(*TUESDAY_AFTERNOON)).state().open
    assert not MarketHours(now_ms=at(2026, 12, 1, 22, 0)).state().open  # after 16:00 New York


@pytest.fixture
async def weekend_feed(hub_cleanup: None) -> AsyncIterator[Feed]:
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    running = Feed(
        SimulatedProvider(ticks_per_second=400, seed=7),
        stream_state(),
        layer,
        market_hours=MarketHours(now_ms=at(*SATURDAY)),
    )
    task = asyncio.create_task(running.run())
    yield running
    running.stop()
    async with asyncio.timeout(10):
        await task


@pytest.mark.asyncio
async def test_while_the_market_is_closed_no_quotes_flow_and_the_snapshot_says_so(
    committed: Committed, weekend_feed: Feed
) -> None:
    tenant = await committed.tenant("pro")
    for _ in range(50):  # the leader has read the calendar and reported it
        status = await stream_state().feed_status()
        if status and status.get("market"):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.1)  # the web side reads the status at most once a second
    ws = connect(tenant.host, session=tenant.session, query="symbols=ZTS")
    await ws.connect()
    snapshot = await receive(ws)
    assert snapshot["market"] == {
        "open": False,
        "last_close_ms": ms(2026, 11, 27, 18, 0),
        "next_open_ms": ms(2026, 11, 30, 14, 30),
    }
    assert await ws.receive_nothing(1.5)  # no quotes while closed
    assert weekend_feed.published == 0
    await ws.disconnect()
