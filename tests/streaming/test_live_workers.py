"""`python -m config.server --workers 2`: two web processes on one port (SO_REUSEPORT), as deployed.

Real processes, real websocket clients: connections spread over both workers, an organisation's plan
holds across them (the leases are in Redis), a worker killed with SIGKILL is started again and its
places come back, SIGTERM stops everything with 1012, and a supervisor killed outright takes its
workers with it.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AsyncExitStack

import psutil
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.core.test_health import METRICS_TOKEN
from tests.core.test_metrics import samples, value
from tests.live import (
    ROOT,
    LiveServer,
    free_port,
    listening_process,
    server_environment,
    stream_environment,
    uvicorn_command,
)
from tests.streaming import live_support
from tests.streaming.conftest import Committed, Tenant
from tests.streaming.live_support import expect_refused, recv_json, ws_connect

pytestmark = pytest.mark.live

db, feed = live_support.db, live_support.feed

STREAMS = 20  # 20 connections all on one worker of two: a chance of 2 in 2**20
LEASE_SECONDS = 3  # LIVE_STREAM_SETTINGS: a dead process's leases lapse after this


def two_free_ports() -> int:
    """A port P with P and P+1 both free (the workers' own ports)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise RuntimeError("no two consecutive free ports on 127.0.0.1")


class Workers:
    def __init__(self, server: LiveServer, ports_from: int) -> None:
        self.server, self.ports_from = server, ports_from

    @property
    def supervisor(self) -> psutil.Process:
        return psutil.Process(self.server.process.pid)

    def pids(self) -> list[int]:
        return sorted(child.pid for child in self.supervisor.children())

    def worker_pid(self, index: int) -> int:
        """The worker serving port P+index (its command line names its index)."""
        for child in self.supervisor.children():
            if child.cmdline()[-2:] == ["--worker-index", str(index)]:
                return int(child.pid)
        raise LookupError(index)

    def streams(self, index: int, schema: str) -> int:
        """Open streams of `schema` in worker `index`, from its own /metrics."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.ports_from + index}/metrics",
                                         headers={"Authorization": f"Bearer {METRICS_TOKEN}"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback only)
            found = samples(response.read().decode())
        return int(value(found, "tickerdeck_stream_connections", organisation=schema, kind="streams") or 0)

    def wait_serving(self, index: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.ports_from + index), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"worker {index} did not listen again within {timeout} s")


@pytest.fixture
def workers(db: None, committed: Committed) -> Iterator[Workers]:
    port = free_port()
    ports_from = two_free_ports()
    while port in (ports_from, ports_from + 1):  # worker 1's own port must not be the shared one
        ports_from = two_free_ports()
    env = server_environment(PORT=str(port), **stream_environment(METRICS_TOKEN=METRICS_TOKEN,
                                                                  WEB_WORKER_PORTS_FROM=str(ports_from)))  # fmt: skip
    with listening_process(uvicorn_command(port, "--workers", "2"), port, env) as server:
        running = Workers(server, ports_from)
        running.wait_serving(0)
        running.wait_serving(1)
        yield running


async def open_streams(stack: AsyncExitStack, workers: Workers, tenant: Tenant, count: int) -> list[ClientConnection]:
    opened = []
    for _ in range(count):
        ws = await stack.enter_async_context(ws_connect(workers.server, tenant.host, tenant.session, "symbols=AAPL"))
        assert (await recv_json(ws, within=10))["type"] == "snapshot"
        opened.append(ws)
    return opened


async def closed_code(ws: ClientConnection, within: float = 10) -> int | None:
    """Read for up to `within` seconds: the close code the server sent (1006: closed without a close
    frame), or None if the connection is still open then (it keeps receiving quotes)."""
    deadline = time.monotonic() + within
    try:
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.wait_for(ws.recv(), left)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else 1006
    except TimeoutError:
        pass
    return None


async def test_connections_spread_over_the_workers_and_the_plan_holds_across_them(
    committed: Committed, feed: object, workers: Workers
) -> None:
    tenant = await committed.tenant(await committed.plan(max_streams=STREAMS))
    async with AsyncExitStack() as stack:
        await open_streams(stack, workers, tenant, STREAMS)
        per_worker = [await asyncio.to_thread(workers.streams, index, tenant.schema) for index in (0, 1)]
        assert sum(per_worker) == STREAMS, per_worker
        assert min(per_worker) > 0, per_worker
        # The plan counts the organisation's streams in every worker, not per worker.
        await expect_refused(workers.server, tenant.host, tenant.session, "symbols=AAPL", 4429, "stream_limit")


async def test_a_killed_worker_is_started_again_and_its_places_come_back(
    committed: Committed, feed: object, workers: Workers
) -> None:
    tenant = await committed.tenant(await committed.plan(max_streams=STREAMS))
    async with AsyncExitStack() as stack:
        streams = await open_streams(stack, workers, tenant, STREAMS)
        killed = workers.worker_pid(0)
        on_killed = await asyncio.to_thread(workers.streams, 0, tenant.schema)
        os.kill(killed, signal.SIGKILL)
        codes = await asyncio.gather(*(closed_code(ws, within=2) for ws in streams))
        dropped = [code for code in codes if code is not None]
        assert len(dropped) == on_killed, codes  # the others stream on
        assert set(dropped) == {1006}, codes

        await asyncio.to_thread(workers.wait_serving, 0)
        assert killed not in workers.pids()
        assert len(workers.pids()) == 2
        # The dead worker's leases lapse: the organisation gets its places back.
        await asyncio.sleep(LEASE_SECONDS + 1)
        await open_streams(stack, workers, tenant, on_killed)
    assert workers.server.output is not None
    assert workers.server.output.search(r"Worker 0 exited \(code -9\): starting it again") is not None


async def test_sigterm_closes_every_stream_with_1012_and_stops_every_worker(
    committed: Committed, feed: object, workers: Workers
) -> None:
    tenant = await committed.tenant(await committed.plan(max_streams=STREAMS))
    pids = workers.pids()
    async with AsyncExitStack() as stack:
        streams = await open_streams(stack, workers, tenant, STREAMS)
        workers.server.process.send_signal(signal.SIGTERM)
        codes = await asyncio.gather(*(closed_code(ws) for ws in streams))
    assert set(codes) == {1012}
    assert await asyncio.to_thread(workers.server.process.wait, 30) == 0
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


def test_a_killed_supervisor_takes_its_workers_with_it(workers: Workers) -> None:
    pids = workers.pids()
    workers.supervisor.kill()
    gone, alive = psutil.wait_procs([psutil.Process(pid) for pid in pids], timeout=20)
    assert not alive
    assert len(gone) == 2


def test_workers_without_redis_are_refused() -> None:
    env = {k: v for k, v in server_environment().items() if k != "REDIS_URL"}
    command = [sys.executable, "-m", "config.server", "--port", "0", "--workers", "2"]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "--workers 2 needs REDIS_URL" in result.stderr
