"""`/metrics` of a real web process (uvicorn) fed by a real `run_feed`, read by a real websocket client."""

import asyncio
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.samples import Sample

from tests.core.test_health import METRICS_TOKEN
from tests.core.test_metrics import samples, value
from tests.live import LiveServer, stream_environment, uvicorn_server
from tests.streaming import live_support
from tests.streaming.conftest import Committed
from tests.streaming.live_support import Tally, read_for, recv_json, ws_connect

pytestmark = pytest.mark.live

db, feed = live_support.db, live_support.feed


@pytest.fixture
def web(db: None, committed: Committed) -> Iterator[LiveServer]:
    with uvicorn_server(**stream_environment(METRICS_TOKEN=METRICS_TOKEN)) as server:
        yield server


def scrape(server: LiveServer) -> list[Sample]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback only)
        return samples(response.read().decode())


async def test_a_web_process_reports_its_streams_refusals_and_latency(
    committed: Committed, feed: Any, web: LiveServer
) -> None:
    tenant = await committed.tenant(await committed.plan(max_streams=1))
    async with ws_connect(web, tenant.host, tenant.session, "symbols=AAPL,MSFT") as ws:
        assert (await recv_json(ws, within=10))["type"] == "snapshot"
        await read_for(ws, 3, Tally(), until=lambda t: len(t.quotes) >= 20)
        async with ws_connect(web, tenant.host, tenant.session, "symbols=AAPL") as over_the_limit:
            assert (await recv_json(over_the_limit))["code"] == "stream_limit"
        async with ws_connect(web, tenant.host, tenant.session, "symbols=AAPL&watchlist=x") as malformed:
            assert (await recv_json(malformed))["code"] == "bad_request"
        open_now = await asyncio.to_thread(scrape, web)

    assert value(open_now, "tickerdeck_stream_connections", organisation=tenant.schema, kind="streams") == 1
    assert (value(open_now, "tickerdeck_stream_connects_accepted_total") or 0) >= 1
    assert (value(open_now, "tickerdeck_stream_refusals_total", code="4429") or 0) >= 1
    assert (value(open_now, "tickerdeck_stream_refusals_total", code="4400") or 0) >= 1
    quotes_in = value(open_now, "tickerdeck_stream_quotes_in_total") or 0
    quotes_out = value(open_now, "tickerdeck_stream_quotes_out_total") or 0
    assert quotes_in >= quotes_out >= 20
    assert (value(open_now, "tickerdeck_stream_frames_out_total") or 0) >= 2  # the snapshot and the quote frames
    frames_timed = value(open_now, "tickerdeck_stream_delivery_latency_seconds_count") or 0
    assert frames_timed >= 1
    assert (value(open_now, "tickerdeck_stream_delivery_latency_seconds_sum") or 0) > 0
    assert value(open_now, "tickerdeck_feed_up", provider="simulated") == 1
    assert value(open_now, "tickerdeck_feed_connected") == 1

    # The server learns of the close a moment after the client; the leader stores its totals each second.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        later = await asyncio.to_thread(scrape, web)
        closed = value(later, "tickerdeck_stream_connections", organisation=tenant.schema, kind="streams") is None
        published = value(later, "tickerdeck_feed_quotes_published_total") or 0
        if closed and published >= quotes_in:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"after 5 s: connection still counted {not closed}, published {published} < {quotes_in}")
    assert (value(later, "tickerdeck_feed_quotes_received_total") or 0) > 0
    # A connection refused for the stream limit never joined the room: leaving it is no error.
    assert web.output is not None
    assert web.output.search("could not leave the room") is None, web.output.tail()
