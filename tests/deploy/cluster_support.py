"""A `make cluster` on test ports: nginx (docker/nginx.conf on loopback) in front of two web
processes and two feeds; clients that reconnect through the proxy the way a dashboard does."""

from __future__ import annotations

import asyncio
import random
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from websockets.exceptions import ConnectionClosed, InvalidStatus

from devtools import cluster as topology
from tests.core.test_health import METRICS_TOKEN
from tests.core.test_metrics import samples, value
from tests.live import (
    FeedProcess,
    LiveServer,
    feed_process,
    free_port,
    listening_process,
    stream_environment,
    uvicorn_process,
)
from tests.streaming.live_support import ws_connect

BACKOFF_FIRST_SECONDS = (0.1, 0.4)  # a dashboard's first retry: a random wait in this range (jitter)
BACKOFF_MAX_SECONDS = 4.0


def cluster_environment() -> dict[str, str]:
    return stream_environment(METRICS_TOKEN=METRICS_TOKEN, **topology.behind_proxy_environment())


@dataclass
class Cluster:
    proxy: LiveServer  # nginx: clients connect here
    webs: list[LiveServer]
    feeds: list[FeedProcess]
    stack: ExitStack

    def web_restart(self, index: int) -> LiveServer:
        """A new web process on the port of web `index` (its old one must have ended)."""
        old = self.webs[index]
        assert old.process.poll() is not None, "stop the old process first"
        self.webs[index] = self.stack.enter_context(uvicorn_process(cluster_environment(), port=old.port))
        return self.webs[index]

    def connections_per_web(self, schema: str) -> list[int]:
        """Open streams of an organisation on each web process (their own /metrics)."""
        return [int(value(web_metrics(web), "tickerdeck_stream_connections", organisation=schema,
                          kind="streams") or 0) for web in self.webs]  # fmt: skip


def web_metrics(web: LiveServer) -> list[Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{web.port}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback only)
        return samples(response.read().decode())


@contextmanager
def nginx_process(proxy_port: int, web_ports: tuple[int, ...], prefix: Path) -> Iterator[LiveServer]:
    main = topology.nginx_prepare(topology.Topology(proxy_port, web_ports), prefix)
    with listening_process(topology.nginx_command(main), proxy_port) as proxy:
        yield proxy


@contextmanager
def cluster_running(prefix: Path) -> Iterator[Cluster]:
    with ExitStack() as stack:
        feeds = [stack.enter_context(feed_process(**cluster_environment())) for _ in range(2)]
        webs = [stack.enter_context(uvicorn_process(cluster_environment())) for _ in range(2)]
        proxy = stack.enter_context(nginx_process(free_port(), tuple(web.port for web in webs), prefix))
        yield Cluster(proxy, webs, feeds, stack)


@dataclass
class Session:
    """One connection of a following client: when it opened, what it got, how it ended."""

    opened: float
    snapshot: dict[str, Any] | None = None
    quotes: list[dict[str, Any]] = field(default_factory=list)
    closed: float | None = None
    close_code: int | None = None  # None: no close frame came (the connection was dropped)


@dataclass
class FollowingClient:
    """A dashboard: it streams, and when the connection ends it reconnects with backoff and jitter."""

    proxy: LiveServer
    host: str
    session: str
    query: str
    sessions: list[Session] = field(default_factory=list)
    failed_attempts: int = 0
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def _follow(self) -> None:
        backoff = random.uniform(*BACKOFF_FIRST_SECONDS)
        while True:
            try:
                async with ws_connect(self.proxy, self.host, self.session, self.query) as ws:
                    current = Session(opened=time.monotonic())
                    self.sessions.append(current)
                    await self._read(ws, current)
                backoff = random.uniform(*BACKOFF_FIRST_SECONDS)
            except (OSError, InvalidStatus, TimeoutError):
                self.failed_attempts += 1
                backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
            await asyncio.sleep(backoff)

    async def _read(self, ws: Any, current: Session) -> None:
        try:
            async for raw in ws:
                message = orjson.loads(raw)
                if message["type"] == "snapshot":
                    current.snapshot = message
                elif message["type"] == "quotes":
                    current.quotes.extend(message["quotes"])
        except ConnectionClosed as closed:
            current.close_code = closed.rcvd.code if closed.rcvd is not None else None
        else:
            current.close_code = ws.close_code
        current.closed = time.monotonic()

    async def wait_sessions(self, count: int, within: float) -> None:
        """Until `count` connections have opened and the last one has its snapshot."""
        deadline = time.monotonic() + within
        while not (len(self.sessions) >= count and self.sessions[-1].snapshot is not None):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.sessions)} connections of {count} within {within} s; "
                                   f"{self.failed_attempts} attempts failed")  # fmt: skip
            await asyncio.sleep(0.05)

    def gaps(self) -> list[float]:
        """Seconds from each connection's end to the next one's opening."""
        return [
            after.opened - before.closed
            for before, after in zip(self.sessions, self.sessions[1:], strict=False)
            if before.closed is not None
        ]


@asynccontextmanager
async def following(
    proxy: LiveServer, host: str, session: str, query: str, count: int
) -> AsyncIterator[list[FollowingClient]]:
    """`count` following clients, each streaming (snapshot received) before the next starts."""
    clients = [FollowingClient(proxy, host, session, query) for _ in range(count)]
    try:
        for client in clients:
            client.start()
            await client.wait_sessions(1, within=15)
        yield clients
    finally:
        for client in clients:
            if client.task is not None:
                await client.stop()
