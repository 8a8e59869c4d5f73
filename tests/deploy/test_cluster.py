"""`make cluster`'s topology, through its nginx: shared quotes and limits across web processes, a
killed web process, a killed feed leader, and a rolling restart."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from devtools import cluster as topology
from tenants.models import Organisation
from tests.core.test_metrics import value
from tests.deploy.cluster_support import (
    BACKOFF_FIRST_SECONDS,
    Cluster,
    FollowingClient,
    cluster_environment,
    cluster_running,
    following,
    web_metrics,
)
from tests.live import ROOT, free_port, http_get, leader_among, record_figure, server_environment
from tests.streaming import live_support
from tests.streaming.conftest import Committed
from tests.streaming.live_support import Tally, expect_refused, read_for, recv_json, ws_connect

pytestmark = [pytest.mark.live, pytest.mark.cluster]

db = live_support.db

SYMBOLS = "symbols=AAPL,MSFT,NVDA"


@pytest.fixture
def cluster(db: None, committed: Committed, tmp_path: Path) -> Iterator[Cluster]:
    with cluster_running(tmp_path / "nginx") as running:
        leader_among(running.feeds).wait_leading()
        yield running


def test_the_proxy_configuration_is_docker_s_with_loopback_addresses() -> None:
    site = topology.nginx_site(topology.Topology(8080, (8081, 8082)))
    assert "server 127.0.0.1:8081 max_fails=0;" in site
    assert "server 127.0.0.1:8082 max_fails=0;" in site
    assert "listen 127.0.0.1:8080 default_server;" in site
    assert "web-1" not in site
    docker = (ROOT / "docker" / "nginx.conf").read_text()
    assert (
        site.replace("127.0.0.1:8081", "web-1:8000")
        .replace("127.0.0.1:8082", "web-2:8000")
        .replace("listen 127.0.0.1:8080", "listen 80")
        == docker
    ), "nothing but the addresses differs from docker/nginx.conf"


def test_a_site_file_that_lost_the_rewritten_lines_is_refused_by_name() -> None:
    with pytest.raises(topology.ClusterError, match="no longer has the lines"):
        topology.nginx_site(topology.Topology(8080, (8081, 8082)), site="server { listen 443; }")


async def test_two_clients_on_different_web_processes_see_the_same_quotes(
    committed: Committed, cluster: Cluster
) -> None:
    tenant = await committed.tenant("pro")
    async with ws_connect(cluster.proxy, tenant.host, tenant.session, SYMBOLS) as first, \
            ws_connect(cluster.proxy, tenant.host, tenant.session, SYMBOLS) as second:  # fmt: skip
        for ws in (first, second):
            assert (await recv_json(ws, within=10))["type"] == "snapshot"
        # least_conn: the second connection went to the process without one.
        assert await asyncio.to_thread(cluster.connections_per_web, tenant.organisation.schema_name) == [1, 1]
        tallies = await asyncio.gather(*(read_for(ws, 3, Tally()) for ws in (first, second)))
    seen = [{(q["symbol"], q["ts"]): q["price"] for _, q in tally.quotes} for tally in tallies]
    both = seen[0].keys() & seen[1].keys()
    assert len(both) >= 10, f"only {len(both)} quotes in common"
    # Conflation may leave a quote out on one side; what both got is the same quote.
    assert all(seen[0][key] == seen[1][key] for key in both)
    assert len(both) >= 0.8 * min(len(s) for s in seen), "the two processes relay the same feed"


async def test_the_stream_limit_holds_across_web_processes_behind_the_proxy(
    committed: Committed, cluster: Cluster
) -> None:
    tenant = await committed.tenant(await committed.plan(max_streams=2))
    async with ws_connect(cluster.proxy, tenant.host, tenant.session, SYMBOLS) as first, \
            ws_connect(cluster.proxy, tenant.host, tenant.session, SYMBOLS) as second:  # fmt: skip
        for ws in (first, second):
            assert (await recv_json(ws, within=10))["type"] == "snapshot"
        assert await asyncio.to_thread(cluster.connections_per_web, tenant.organisation.schema_name) == [1, 1]
        for _ in range(2):  # whichever process the proxy picks, the organisation is at its limit
            await expect_refused(cluster.proxy, tenant.host, tenant.session, SYMBOLS, 4429, "stream_limit")


async def test_a_killed_web_process_s_clients_reconnect_through_the_proxy_and_get_a_snapshot(
    committed: Committed, cluster: Cluster
) -> None:
    tenant = await committed.tenant("pro")
    async with following(cluster.proxy, tenant.host, tenant.session, SYMBOLS, 4) as clients:
        per_web = await asyncio.to_thread(cluster.connections_per_web, tenant.organisation.schema_name)
        assert per_web == [2, 2]
        cluster.webs[0].process.kill()  # SIGKILL: no close frame, no release; its leases lapse
        killed_at = time.monotonic()
        dropped = [c for c in clients if await _ended_within(c, 5)]
        assert len(dropped) == 2, "the killed process's two clients lost their connection"
        for client in dropped:
            assert client.sessions[0].close_code is None, "a killed process sends no close frame"
            await client.wait_sessions(2, within=15)
            second = client.sessions[1]
            assert second.snapshot is not None
            assert second.snapshot["type"] == "snapshot"
            assert {q["symbol"] for q in second.snapshot["quotes"]} == {"AAPL", "MSFT", "NVDA"}
        await asyncio.sleep(1)
        assert all(len(c.sessions) == 1 for c in clients if c not in dropped), "the other clients were not touched"
        assert all(c.sessions[-1].quotes for c in dropped), "quotes flow again after the reconnect"
        back = max(c.sessions[1].opened for c in dropped) - killed_at
        record_figure("cluster: SIGKILL of a web process → all its clients streaming again through nginx",
                      f"{back:.2f} s (failed attempts: {sum(c.failed_attempts for c in dropped)})")  # fmt: skip
        survivor = await asyncio.to_thread(web_metrics, cluster.webs[1])
        assert value(survivor, "tickerdeck_stream_connections", organisation=tenant.organisation.schema_name,
                     kind="streams") == 4  # fmt: skip


async def _ended_within(client: FollowingClient, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if client.sessions[0].closed is not None:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_the_standby_feed_takes_over_and_clients_behind_the_proxy_keep_their_streams(
    committed: Committed, cluster: Cluster
) -> None:
    tenant = await committed.tenant("pro")
    async with following(cluster.proxy, tenant.host, tenant.session, SYMBOLS, 2) as clients:
        leader = leader_among(cluster.feeds)
        standby = next(feed for feed in cluster.feeds if feed is not leader)
        await asyncio.sleep(1)
        leader.process.kill()
        killed_at = time.monotonic()
        counts = [len(c.sessions[0].quotes) for c in clients]
        await asyncio.to_thread(standby.wait_leading)
        took_over = time.monotonic() - killed_at
        deadline = time.monotonic() + 10
        while any(len(c.sessions[0].quotes) == n for c, n in zip(clients, counts, strict=True)):
            assert time.monotonic() < deadline, "no quote on the open streams 10 s after the standby took over"
            await asyncio.sleep(0.05)
        resumed = time.monotonic() - killed_at
        assert all(len(c.sessions) == 1 for c in clients), "the streams stayed open: no reconnect was needed"
        record_figure("cluster: feed leader SIGKILLed → standby leads / quotes resume on open streams",
                      f"{took_over:.2f} s / {resumed:.2f} s")  # fmt: skip


async def test_a_rolling_restart_closes_with_1012_and_every_client_is_back_after_one_backoff(
    committed: Committed, cluster: Cluster
) -> None:
    tenant = await committed.tenant("pro")
    async with following(cluster.proxy, tenant.host, tenant.session, SYMBOLS, 6) as clients:
        # README's procedure: one process at a time, the next once the restarted one is ready.
        for index in range(len(cluster.webs)):
            web = cluster.webs[index]
            web.process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(web.process.wait, 20)
            await asyncio.to_thread(cluster.web_restart, index)
        for client in clients:
            await client.wait_sessions(2, within=15)
        await asyncio.sleep(1)
        closes = [s.close_code for c in clients for s in c.sessions if s.closed is not None]
        assert closes, "the restarts closed connections"
        assert set(closes) == {1012}, f"every connection ended with 1012 (service restart): {closes}"
        assert sum(c.failed_attempts for c in clients) == 0, "every reconnect succeeded at its first attempt"
        assert all(c.sessions[-1].snapshot is not None for c in clients)
        # A client is closed once per restart of the process it is on: at most twice (moved, then again).
        assert all(len(c.sessions) <= 3 for c in clients)
        gaps = [gap for c in clients for gap in c.gaps()]
        record_figure("cluster: rolling restart of both web processes, 6 clients",
                      f"{len(gaps)} reconnects, gap max {max(gaps):.2f} s, mean {sum(gaps) / len(gaps):.2f} s "
                      f"(first backoff {BACKOFF_FIRST_SECONDS[0]}-{BACKOFF_FIRST_SECONDS[1]} s)")  # fmt: skip
        assert max(gaps) <= BACKOFF_FIRST_SECONDS[1] + 1.0, "a reconnect waited for more than one backoff"


@pytest.fixture
def bootstrap_rows_removed(db: None, committed: Committed, django_db_blocker: Any) -> Iterator[None]:
    """`make cluster` runs `bootstrap --demo` on the test database: the organisations and users it adds
    (the demo's) are removed afterwards, or other tests on this worker would count them."""
    with django_db_blocker.unblock():
        organisations = set(Organisation.objects.values_list("pk", flat=True))
        users = set(User.objects.values_list("pk", flat=True))
    yield
    with django_db_blocker.unblock():
        committed.organisations.extend(Organisation.objects.exclude(pk__in=organisations))
        committed.users.extend(User.objects.exclude(pk__in=users))


@pytest.mark.usefixtures("bootstrap_rows_removed")
def test_make_cluster_serves_through_nginx_and_ctrl_c_stops_everything() -> None:
    port = free_port()
    env = server_environment(CLUSTER_PORT=str(port), **cluster_environment())
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools", "cluster"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        # nginx is ready with one web process up; each web process (its workers) starts on its own.
        for listening, path in ((port, "/readyz"), (port + 1, "/healthz"), (port + 2, "/healthz")):
            while time.monotonic() < deadline:
                try:
                    if http_get(listening, path)[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.5)
            else:
                pytest.fail(f"nothing answered {path} with 200 on port {listening} within 120 s")
        status, _ = http_get(port, "/healthz", host="demo.localhost")
        assert status == 200
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output[-3000:]
    assert "Stopped." in output
    for listening in (port, port + 1, port + 2):
        with pytest.raises(urllib.error.URLError, match="Connection refused"):
            http_get(listening, "/healthz", timeout=1)


def test_make_cluster_refuses_a_busy_port_by_name() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "devtools", "cluster"], cwd=ROOT, capture_output=True, text=True, timeout=60,
            env={**os.environ, "CLUSTER_PORT": str(port)},
        )  # fmt: skip
    assert result.returncode == 1
    assert f"Port(s) {port}" in result.stderr
    assert "CLUSTER_PORT" in result.stderr
