"""Faults injected into servers of the tests' own: a TCP proxy in front of the shared PostgreSQL that
is cut and restored (how a database restart looks to its clients), and a private Redis restarted.

The shared PostgreSQL and Redis are never stopped: other runs and a benchmark use them.
"""

import asyncio
import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from tests.live import free_port, test_database_url
from tests.streaming.conftest import committed  # noqa: F401 (a fixture of these tests)
from tests.streaming.live_support import db  # noqa: F401 (a fixture of these tests)


class TcpProxy:
    """A loopback TCP forwarder on a port of its own, run by an event loop in a thread.

    `cut()` closes the listening socket and drops every forwarded connection (clients see their
    connections reset and new ones refused, as when the server behind restarts); `restore()`
    listens again on the same port.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def _run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def restore(self) -> None:
        self._run(self._listen())

    def cut(self) -> None:
        self._run(self._cut())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        pair = (client_writer, upstream_writer)
        self._writers.update(pair)
        try:
            await asyncio.gather(_pump(client_reader, upstream_writer), _pump(upstream_reader, client_writer))
        finally:
            for writer in pair:
                self._writers.discard(writer)
                writer.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()  # one side ended: end the other, as the server's own close would


@pytest.fixture
def database_proxy() -> Iterator[TcpProxy]:
    """A proxy in front of the shared PostgreSQL (listening)."""
    parts = urlsplit(test_database_url())
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy.restore()
    try:
        yield proxy
    finally:
        proxy.close()


def proxied_database_url(proxy: TcpProxy) -> str:
    """The test database's DATABASE_URL, through the proxy."""
    parts = urlsplit(test_database_url())
    credentials, _, _ = parts.netloc.rpartition("@")
    address = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{credentials}@{address}" if credentials else address))


class RedisServer:
    """A redis-server of the tests' own on a fixed free port, without persistence: a restart loses every key."""

    def __init__(self, directory: Path) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.fail("redis-server is not installed: `make test` starts Redis with it (README: Tests)")
        self.executable = executable
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        try:
            for _ in range(200):
                with contextlib.suppress(redis.ConnectionError):
                    if client.ping():
                        return
                time.sleep(0.05)
            raise TimeoutError(f"redis-server on port {self.port} did not answer")
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients, every key gone (no persistence)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()
