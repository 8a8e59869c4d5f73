"""Open streams follow the feed between snapshots: the market closing and opening, and symbols the
source stops or starts serving, through the whole ASGI application and the Redis channel layer."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers

from streaming.feed import Feed
from streaming.market_hours import MarketHours
from streaming.state import stream_state
from tests.streaming import conftest as streaming_fixtures
from tests.streaming.conftest import Committed, connect, receive, receive_until
from tests.streaming.market_support import (
    TUESDAY_AFTERNOON,
    TUESDAY_CLOSE,
    TUESDAY_EVENING,
    WEDNESDAY_OPEN,
    MovableClock,
    MovableFeed,
    ServingSome,
)
from tests.widgets.test_consumer import make_widget, viewer

committed, hub_cleanup = streaming_fixtures.committed, streaming_fixtures.hub_cleanup

pytestmark = [pytest.mark.asyncio]


@pytest.fixture
async def movable_feed(hub_cleanup: None) -> AsyncIterator[MovableFeed]:
    """The real feed in this test's loop, with a layer of its own, on a clock and a provider the test moves."""
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    clock = MovableClock(TUESDAY_AFTERNOON)
    provider = ServingSome()
    running = Feed(provider, stream_state(), layer, market_hours=MarketHours(now_ms=clock))
    running.market_check_seconds = 0.05
    task = asyncio.create_task(running.run())
    try:
        for _ in range(600):  # leading, the calendar read (its first load takes seconds) and reported
            if running.market and ((await stream_state().feed_status()) or {}).get("market"):
                break
            await asyncio.sleep(0.05)
        assert running.market is not None
        yield MovableFeed(running, provider, clock)
    finally:
        running.stop()
        async with asyncio.timeout(10):
            await task


async def test_an_open_stream_hears_the_market_close_and_open(committed: Committed, movable_feed: MovableFeed) -> None:
    tenant = await committed.tenant("pro")
    ws = connect(tenant.host, session=tenant.session, query="symbols=AAPL")
    await ws.connect()
    snapshot = await receive(ws)
    assert "market" not in snapshot  # open
    await receive_until(ws, "quotes")

    movable_feed.clock.at_ms = TUESDAY_EVENING
    closed = await receive_until(ws, "market")
    assert closed == {
        "type": "market",
        "market": {"open": False, "last_close_ms": TUESDAY_CLOSE, "next_open_ms": WEDNESDAY_OPEN},
    }
    movable_feed.clock.at_ms = WEDNESDAY_OPEN + 60_000
    opened = await receive_until(ws, "market")
    assert opened["market"]["open"] is True
    assert opened["market"]["next_open_ms"] is None
    await receive_until(ws, "quotes")  # quotes flow again on the same connection
    await ws.disconnect()


async def test_a_widget_viewer_hears_the_market_close(committed: Committed, movable_feed: MovableFeed) -> None:
    tenant = await committed.tenant("pro")
    widget = await make_widget(tenant)
    ws = viewer(tenant, widget)
    connected, _ = await ws.connect()
    assert connected
    assert (await receive(ws))["type"] == "snapshot"
    await receive_until(ws, "quotes")  # the feed has the organisation in its index

    movable_feed.clock.at_ms = TUESDAY_EVENING
    assert (await receive_until(ws, "market"))["market"] == movable_feed.feed.changes.market
    assert movable_feed.feed.changes.market == {
        "open": False,
        "last_close_ms": TUESDAY_CLOSE,
        "next_open_ms": WEDNESDAY_OPEN,
    }
    await ws.disconnect()


async def test_streams_hear_which_of_their_symbols_stop_and_start_being_served(
    committed: Committed, movable_feed: MovableFeed
) -> None:
    tenant = await committed.tenant("pro")
    both, apple = (connect(tenant.host, session=tenant.session, query=q) for q in ("symbols=AAPL,MSFT", "symbols=AAPL"))
    for ws in (both, apple):
        await ws.connect()
        assert "unserved" not in await receive(ws)

    movable_feed.provider.unserved = {"MSFT": "symbol_limit"}
    told = await receive_until(both, "unserved")
    assert told == {"type": "unserved", "unserved": [{"symbol": "MSFT", "reason": "symbol_limit"}]}

    movable_feed.provider.unserved = {}
    cleared = await receive_until(both, "unserved")
    assert cleared == {"type": "unserved", "unserved": []}

    # The AAPL-only stream heard neither: its replies queue in order, so whatever it was told comes before
    # the answer to a ping sent after both changes reached the other stream.
    await apple.send_json_to({"action": "ping"})
    kinds = set()
    while (kind := (await receive(apple))["type"]) != "pong":
        kinds.add(kind)
    assert kinds <= {"quotes"}
    await both.disconnect()
    await apple.disconnect()


async def test_a_new_subscription_to_a_symbol_already_unserved_says_so(
    committed: Committed, movable_feed: MovableFeed
) -> None:
    tenant = await committed.tenant("pro")
    movable_feed.provider.unserved = {"TSLA": "not_entitled"}
    for _ in range(50):  # the leader has stored it (each second)
        if "TSLA" in ((await stream_state().feed_status()) or {}).get("unserved", {}):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.1)  # the web side reads the status at most once a second
    ws = connect(tenant.host, session=tenant.session, query="symbols=AAPL")
    await ws.connect()
    await receive(ws)
    await ws.send_json_to({"action": "subscribe", "symbols": ["TSLA"]})
    assert (await receive_until(ws, "subscribed"))["symbols"] == ["TSLA"]
    told = await receive_until(ws, "unserved")
    assert told["unserved"] == [{"symbol": "TSLA", "reason": "not_entitled"}]
    await ws.disconnect()
