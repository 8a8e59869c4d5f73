"""Slow and stopped readers against a real uvicorn process and a real feed (SPEC: conflation, close 4408)."""

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.live import FeedProcess, LiveServer, feed_process, record_figure, stream_environment
from tests.streaming import live_support
from tests.streaming.conftest import Committed, Tenant
from tests.streaming.live_support import (
    Tally,
    directory_symbols,
    now_ms,
    read_for,
    read_frame,
    recv_json,
    server_send_queue,
    small_buffer_socket,
    ws_connect,
)

pytestmark = pytest.mark.live

# The live fixtures (pytest finds fixtures among a module's globals).
db, feed, web = live_support.db, live_support.feed, live_support.web

SLOW_FACTOR = 10
SLOW_SECONDS = 12.0
SEND_QUEUE_BOUND = 64 * 1024  # config.server bounds the kernel buffer at 8 KiB (doubled) + overhead


def slow_client(web: LiveServer, tenant: Tenant, symbols: list[str]) -> connect:
    """A client that buffers as little as it can (a 4 KB socket buffer, one queued frame): what piles
    up for it piles up in the server."""
    query = "symbols=" + ",".join(symbols)
    return ws_connect(web, tenant.host, tenant.session, query, max_queue=1, sock=small_buffer_socket(web))


@dataclass
class SlowRead:
    rss_growth_mb: float
    tally: Tally
    send_queue: list[int | None]  # the server kernel's unsent bytes for this connection, once a second
    fast_fps: float
    started_ms: int  # when the slow reading began
    closed: int | None = None  # close code, if the server closed the connection


async def read_slowly(web: LiveServer, ws: ClientConnection) -> SlowRead:
    """Read at full speed for 2 s, then ten times slower for SLOW_SECONDS (sleeping between frames)."""
    fast = await read_for(ws, 2.0, Tally())
    fast_fps = fast.frames / 2.0
    assert fast_fps >= 10, f"the stream is too thin to be slowed down ({fast_fps} frames/s)"
    server = psutil.Process(web.process.pid)
    rss_before = server.memory_info().rss
    tally, send_queue, closed = Tally(), [], None
    started, started_ms = time.monotonic(), now_ms()
    next_sample = started
    try:
        while time.monotonic() - started < SLOW_SECONDS:
            await read_frame(ws, tally)
            if time.monotonic() >= next_sample:
                send_queue.append(server_send_queue(web, ws.local_address[1]))
                next_sample += 1
            await asyncio.sleep(SLOW_FACTOR / fast_fps)
    except ConnectionClosed as exc:
        closed = exc.rcvd.code if exc.rcvd else None
    growth = (server.memory_info().rss - rss_before) / 1e6
    return SlowRead(growth, tally, send_queue, fast_fps, started_ms, closed)


async def test_a_slow_reader_keeps_server_memory_flat(committed: Committed, feed: FeedProcess, web: LiveServer) -> None:
    tenant = await committed.tenant("pro")
    async with slow_client(web, tenant, await directory_symbols(50)) as ws:
        assert (await recv_json(ws, within=10))["type"] == "snapshot"
        slow = await read_slowly(web, ws)
    record_figure("slow reader memory", f"uvicorn RSS {slow.rss_growth_mb:+.1f} MB over {SLOW_SECONDS} s; "
                  f"server kernel send queue each second {slow.send_queue} bytes")  # fmt: skip
    assert slow.closed is None, f"a slow reader was closed ({slow.closed}); only a stopped one should be"
    assert slow.tally.frames >= SLOW_SECONDS * slow.fast_fps / SLOW_FACTOR / 2
    assert slow.rss_growth_mb < 20
    # What waits for the slow reader on the server stays bounded (conflation keeps only the latest
    # quote per symbol above it: tests/streaming/test_unit_sender.py).
    queued = [q for q in slow.send_queue if q is not None]
    assert queued, "the server's send queue could be read"
    assert max(queued) <= SEND_QUEUE_BOUND, slow.send_queue


@dataclass(frozen=True)
class Load:
    plan: str
    symbols: int
    ticks_per_second: str
    silent_seconds: float


LOADS = {
    # The brief's settings: 50 symbols at 400 ticks/s (~50 KB/s of quotes), 10 s without reading.
    "pro-400tps": Load("pro", 50, "400", 10.0),
    # Enough data (~0.7 MB/s) to fill the server's socket buffers (~4 MB on loopback) within seconds.
    "business-5000tps": Load("business", 500, "5000", 20.0),
}


@pytest.fixture(params=list(LOADS))
def load(request: pytest.FixtureRequest) -> Load:
    return LOADS[request.param]


@pytest.fixture
def loaded_feed(db: None, load: Load) -> Iterator[FeedProcess]:
    with feed_process(**stream_environment(SIMULATED_TICKS_PER_SECOND=load.ticks_per_second)) as running:
        running.wait_leading()
        yield running


async def test_a_client_that_stops_reading_is_closed_4408(
    committed: Committed, load: Load, loaded_feed: FeedProcess, web: LiveServer
) -> None:
    """It stops reading, then reads everything buffered: at the end of it comes the close 4408 (SPEC)."""
    tenant = await committed.tenant(load.plan)
    async with slow_client(web, tenant, await directory_symbols(load.symbols)) as ws:
        assert (await recv_json(ws, within=10))["type"] == "snapshot"
        await read_for(ws, 1.0, Tally())
        await asyncio.sleep(load.silent_seconds)  # the client stops reading (its socket buffer is 4 KB)
        queued = server_send_queue(web, ws.local_address[1])
        resumed, frames, youngest = time.monotonic(), 0, None
        try:
            while time.monotonic() - resumed < 15:
                message = await recv_json(ws, within=10)
                frames += 1
                ages = [now_ms() - q["ts"] for q in message.get("quotes", [])]
                youngest = min([youngest or 10**9, *ages])
                if ages and max(ages) < 1000:
                    break  # caught up: everything buffered was read and the server is still streaming
        except (ConnectionClosed, TimeoutError):
            pass
        code = ws.close_code
    slow_logs = [line for line in web.output.lines if "slow consumer" in line or "4408" in line] if web.output else []
    report = (f"after {load.silent_seconds} s without reading: server kernel send queue {queued} bytes; "
              f"read {frames} frames in {time.monotonic() - resumed:.1f} s (youngest quote {youngest} ms old); "
              f"close code {code}; server log {slow_logs}")  # fmt: skip
    record_figure(f"stopped reader {load.plan}", report)
    assert code == 4408, report
