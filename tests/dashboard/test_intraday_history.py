"""Intraday history: the feed keeps a point a minute per watched symbol; the dashboard starts its sparkline there."""

import asyncio
import re
import time

import pytest
from asgiref.sync import sync_to_async

from streaming.feed import HISTORY_POINTS, HISTORY_STEP_MS, Feed
from streaming.state import history_sync
from tenants.db import activate_public_schema
from tests.conftest import host_client
from tests.streaming import conftest as streaming_fixtures
from tests.streaming.conftest import Committed, Tenant, connect, receive
from tests.watchlists.conftest import inside
from watchlists.services import watchlist_create

pytestmark = [pytest.mark.asyncio]

# The websocket tests' fixtures (pytest finds fixtures among a module's globals).
committed, feed, hub_cleanup = streaming_fixtures.committed, streaming_fixtures.feed, streaming_fixtures.hub_cleanup


async def day_of_points(symbol: str) -> list[tuple[int, float]]:
    """The symbol's history once the feed has filled in the day (bounded wait)."""
    for _ in range(50):
        points = (await sync_to_async(history_sync)([symbol])).get(symbol, [])
        if len(points) >= HISTORY_POINTS:
            return points
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{symbol} has {len(points)} points after 5 s")


async def test_a_watched_symbol_gets_a_trading_day_of_minute_points_at_once(committed: Committed, feed: Feed) -> None:
    tenant = await committed.tenant("pro")
    ws = connect(tenant.host, session=tenant.session, query="symbols=KO")
    await ws.connect()
    await receive(ws)
    points = await day_of_points("KO")
    await ws.disconnect()
    now_minute = time.time_ns() // 1_000_000 // HISTORY_STEP_MS * HISTORY_STEP_MS
    latest = points[-HISTORY_POINTS:]
    assert [ts for ts, _ in latest] == list(
        range(latest[0][0], latest[0][0] + HISTORY_POINTS * HISTORY_STEP_MS, HISTORY_STEP_MS)
    )
    assert now_minute - HISTORY_STEP_MS <= latest[-1][0] <= now_minute
    assert all(price > 0 for _, price in latest)


def dashboard_histories(tenant: Tenant) -> dict[str, list[int]]:
    """The dashboard page's `data-history` per symbol: the minute timestamps it starts the sparkline with."""
    with inside(tenant.organisation):
        watchlist_create(organisation=tenant.organisation, name="Mine", symbols=["AAPL"])
    client = host_client(tenant.host)
    client.force_login(tenant.owner)
    try:
        page = client.get("/").content.decode()
    finally:
        activate_public_schema()  # the request left this thread's connection on the tenant's schema
    rows = re.findall(r'<tr data-symbol="([A-Z.]+)" data-history="([^"]*)">', page)
    return {symbol: [int(point.split(":")[0]) for point in history.split()] for symbol, history in rows}


async def test_the_dashboard_starts_the_sparkline_from_history_never_newer_than_the_delay(
    committed: Committed, feed: Feed
) -> None:
    tenant = await committed.tenant("free")  # 15 minutes delayed
    ws = connect(tenant.host, session=tenant.session, query="symbols=AAPL")
    await ws.connect()
    await receive(ws)
    await day_of_points("AAPL")
    histories = await sync_to_async(dashboard_histories)(tenant)
    await ws.disconnect()
    cutoff = time.time_ns() // 1_000_000 - 15 * 60_000
    assert len(histories["AAPL"]) >= HISTORY_POINTS - 17
    assert max(histories["AAPL"]) <= cutoff
