"""Intraday history: the dashboard starts each sparkline from the feed's minute bars (their closes),
never newer than the plan's delay. (How the feed keeps the bars: tests/streaming/test_bars.py.)"""

import re
import time

import pytest
from asgiref.sync import sync_to_async

from streaming.feed import Feed
from streaming.state import BARS_KEPT, MINUTE_MS, bars_sync, stream_state
from tenants.db import activate_public_schema
from tests.conftest import host_client
from tests.streaming import conftest as streaming_fixtures
from tests.streaming import test_bars
from tests.streaming.conftest import Committed, Tenant, connect, receive
from tests.watchlists.conftest import inside
from watchlists.services import watchlist_create

pytestmark = [pytest.mark.asyncio]

# The websocket tests' fixtures, and the feed with run_feed's observers (pytest finds fixtures among a
# module's globals).
committed, hub_cleanup = streaming_fixtures.committed, streaming_fixtures.hub_cleanup
recording_feed = test_bars.recording_feed


def dashboard_histories(tenant: Tenant) -> dict[str, list[tuple[int, float]]]:
    """The dashboard page's `data-history` per symbol: the (minute, price) points it starts the sparkline with."""
    with inside(tenant.organisation):
        watchlist_create(organisation=tenant.organisation, name="Mine", symbols=["AAPL"])
    client = host_client(tenant.host)
    client.force_login(tenant.owner)
    try:
        page = client.get("/").content.decode()
    finally:
        activate_public_schema()  # the request left this thread's connection on the tenant's schema
    rows = re.findall(r'<tr data-symbol="([A-Z.]+)" data-history="([^"]*)">', page)
    return {
        symbol: [(int(ts), float(price)) for ts, price in (point.split(":") for point in history.split())]
        for symbol, history in rows
    }


@pytest.mark.parametrize(("plan", "delay_minutes"), [("free", 15), ("pro", 0)])
async def test_the_dashboard_starts_the_sparkline_from_bar_closes_never_newer_than_the_delay(
    committed: Committed, recording_feed: Feed, plan: str, delay_minutes: int
) -> None:
    tenant = await committed.tenant(plan)
    # An earlier test's feed left AAPL's bars in this run's Redis: waiting for "a day of bars" would
    # then not wait for this feed's own, which replace them once its history is in.
    await stream_state().bars_replace({"AAPL": []})
    ws = connect(tenant.host, session=tenant.session, query="symbols=AAPL")
    await ws.connect()
    await receive(ws)
    await test_bars.day_of_bars("AAPL")
    histories = await sync_to_async(dashboard_histories)(tenant)
    await ws.disconnect()
    cutoff = time.time_ns() // 1_000_000 - delay_minutes * MINUTE_MS
    closes = {bar.minute: bar.close for bar in (await sync_to_async(bars_sync)(["AAPL"]))["AAPL"]}
    points = histories["AAPL"]
    assert len(points) >= BARS_KEPT - delay_minutes - 2
    assert all(minute + MINUTE_MS <= cutoff for minute, _ in points)  # only minutes that ended the delay ago
    # Each point is its minute's close (the first may have left the day since; the last may have been
    # stored complete since the page was read).
    assert all(closes[minute] == price for minute, price in points[1:-1])
