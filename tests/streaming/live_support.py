"""Live streaming tests' fixtures (real web and feed processes) and their websocket client.

The client is the `websockets` library; a test module imports the fixtures it uses by name.
"""

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from symbols.models import Symbol
from tests.live import FeedProcess, LiveServer, feed_process, stream_environment, uvicorn_server
from tests.streaming.conftest import Committed


@pytest.fixture
async def db(django_db_setup: None) -> AsyncIterator[None]:
    """Stands in for pytest-django's `db`, so that the test database is created for live tests.

    pytest-django sets up the test database only for tests that use `db` (or a django_db mark);
    with `committed` alone, the live processes and `committed` would use DATABASE_URL's own
    database. The real `db` would hold each test in a transaction the server processes cannot see.
    Afterwards the connection of sync_to_async's thread is closed (or the test database cannot be
    dropped at the end of the run).
    """
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def feed(db: None) -> Iterator[FeedProcess]:
    """A `run_feed` process that leads the feed."""
    with feed_process(**stream_environment()) as running:
        running.wait_leading()
        yield running


@pytest.fixture
def web(db: None, committed: Committed) -> Iterator[LiveServer]:
    """A uvicorn process (stopped before `committed` deletes its rows)."""
    with uvicorn_server(**stream_environment()) as server:
        yield server


@pytest.fixture
def web_other(db: None, committed: Committed) -> Iterator[LiveServer]:
    with uvicorn_server(**stream_environment()) as server:
        yield server


QUOTE_FIELDS = {"symbol", "price", "bid", "ask", "volume", "change", "change_pct", "ts"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ws_connect(server: LiveServer, host: str, session: str | None, query: str, **options: Any) -> connect:
    """Connect to `host` (an organisation's host, sent as Host) on the server's loopback port.

    *.localhost does not resolve in Python, so the socket goes to 127.0.0.1 while the URI names the host.
    """
    headers = {"Cookie": f"sessionid={session}"} if session else {}
    uri = f"ws://{host}:{server.port}/ws/stock-market/?{query}"
    if "sock" not in options:
        options.update(host="127.0.0.1", port=server.port)
    # A client that stops reading (a full receive queue) cannot read the server's closing frame
    # either; a short close timeout keeps `async with` from waiting 10 s for it.
    options.setdefault("close_timeout", 1)
    return connect(uri, additional_headers=headers, compression=None, proxy=None, open_timeout=10, **options)


def small_buffer_socket(server: LiveServer, rcvbuf: int = 4096) -> socket.socket:
    """A connected client socket with a small receive buffer (set before connect, so the window stays small)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    return sock


async def recv_json(ws: ClientConnection, within: float = 5) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), within)
    return dict(orjson.loads(raw))


async def recv_until(ws: ClientConnection, kind: str, within: float = 10) -> dict[str, Any]:
    """Skip messages until one of type `kind` arrives (bounded by `within` seconds)."""
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        message = await recv_json(ws, within=left)
        if message["type"] == kind:
            return message
    raise TimeoutError(f"no {kind} message within {within}s")


async def expect_refused(
    server: LiveServer, host: str, session: str | None, query: str, close_code: int, error_code: str, **options: Any
) -> dict[str, Any]:
    """The server accepts, sends an `error` with `error_code`, then closes with `close_code`."""
    async with ws_connect(server, host, session, query, **options) as ws:
        error = await recv_json(ws)
        assert error["type"] == "error", error
        assert error["code"] == error_code, error
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == close_code
    return error


def quote_problems(quote: dict[str, Any], received_ms: int, max_age_ms: int) -> list[str]:
    """What is wrong with a quote of SPEC's shape received at `received_ms` (empty when nothing)."""
    problems = []
    if set(quote) != QUOTE_FIELDS:
        problems.append(f"fields {sorted(quote)}")
    elif not quote["bid"] <= quote["price"] <= quote["ask"]:
        problems.append(f"bid/price/ask {quote['bid']}/{quote['price']}/{quote['ask']}")
    age = received_ms - int(quote.get("ts", 0))
    if not -50 <= age <= max_age_ms:  # a few ms of clock reading order between processes
        problems.append(f"age {age} ms")
    return problems


@dataclass
class Tally:
    """Quotes read from one connection: (receive time, quote) pairs and the non-quote messages."""

    quotes: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    frames: int = 0

    def ages(self) -> list[int]:
        return [received - int(quote["ts"]) for received, quote in self.quotes]

    def symbols(self) -> set[str]:
        return {quote["symbol"] for _, quote in self.quotes}


async def read_frame(ws: ClientConnection, tally: Tally, within: float = 5) -> None:
    """Read one message into `tally`."""
    message = await recv_json(ws, within=within)
    received = now_ms()
    if message["type"] == "quotes":
        tally.frames += 1
        tally.quotes.extend((received, quote) for quote in message["quotes"])
    else:
        tally.messages.append(message)


async def read_for(
    ws: ClientConnection, seconds: float, tally: Tally, until: Callable[[Tally], bool] = lambda _: False
) -> Tally:
    """Read messages into `tally` for `seconds` (or until `until(tally)` holds)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0 and not until(tally):
        try:
            await read_frame(ws, tally, within=left)
        except TimeoutError:
            break
    return tally


async def directory_symbols(count: int | None = None) -> list[str]:
    """Plain (letters only) tickers of the symbol directory, in order."""

    def read() -> list[str]:
        symbols = Symbol.objects.filter(symbol__regex=r"^[A-Z]+$").values_list("symbol", flat=True)
        return list(symbols[:count] if count is not None else symbols)

    return await sync_to_async(read)()


def server_send_queue(server: LiveServer, client_port: int) -> int | None:
    """Bytes the server's kernel holds unsent for one client connection (Linux /proc/net/tcp)."""
    wanted = (f"{server.port:04X}", f"{client_port:04X}")
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].split(":")[1], fields[2].split(":")[1]
        if (local, remote) == wanted:
            return int(fields[4].split(":")[0], 16)
    return None
