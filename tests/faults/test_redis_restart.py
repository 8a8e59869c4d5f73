"""Redis restarted (every key lost) while clients stream: each client recovers in place or is closed
1012 and reconnects to a snapshot; a client connecting meanwhile is closed 1012; afterwards the
stream leases are exactly the open streams and the plan's stream limit holds."""

import asyncio
import time

import pytest
from redis import asyncio as aioredis

from tests.deploy.cluster_support import FollowingClient, following
from tests.faults.conftest import RedisServer
from tests.live import feed_process, record_figure, stream_environment, stream_key, uvicorn_server
from tests.streaming.conftest import Committed, Tenant
from tests.streaming.live_support import expect_refused, now_ms, recv_json, ws_connect

pytestmark = pytest.mark.live

SYMBOLS = "symbols=AAPL,MSFT,NVDA"
CLIENTS = 3
OUTAGE_SECONDS = 2.0
LEASE_SECONDS = 3.0  # tests.live.LIVE_STREAM_SETTINGS


async def leases_held(redis: "aioredis.Redis[bytes]", tenant: Tenant) -> int:
    key = stream_key(f"lease:streams:{tenant.schema}")
    await redis.zremrangebyscore(key, "-inf", now_ms())
    return int(await redis.zcard(key))


async def leases_settle(redis: "aioredis.Redis[bytes]", tenant: Tenant, expected: int, within: float) -> int:
    """The leases held once they equal `expected`, or after `within` seconds."""
    deadline = time.monotonic() + within
    held = await leases_held(redis, tenant)
    while held != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        held = await leases_held(redis, tenant)
    return held


def streaming_since(client: FollowingClient, since_ms: int) -> bool:
    """Whether the client's current connection has had a quote stamped after `since_ms`."""
    session = client.sessions[-1]
    return session.closed is None and any(quote["ts"] > since_ms for quote in session.quotes)


async def test_a_redis_restart_leaves_every_client_streaming_and_the_leases_right(
    committed: Committed, private_redis: RedisServer
) -> None:
    environment = stream_environment(REDIS_URL=private_redis.url)
    tenant = await committed.tenant(await committed.plan(max_streams=CLIENTS + 1))
    with feed_process(**environment) as feed, uvicorn_server(**environment) as web:
        await asyncio.to_thread(feed.wait_leading)
        async with following(web, tenant.host, tenant.session, SYMBOLS, CLIENTS) as clients:
            private_redis.kill()
            # A client that connects while Redis is away is told to come back (not an HTTP 500).
            await expect_refused(web, tenant.host, tenant.session, SYMBOLS, 1012, "server_restart")
            await asyncio.sleep(OUTAGE_SECONDS)
            await asyncio.to_thread(private_redis.start)
            restarted, restarted_ms = time.monotonic(), now_ms()

            deadline = restarted + 30
            while not all(streaming_since(client, restarted_ms) for client in clients):
                assert time.monotonic() < deadline, "a client has no fresh quote 30 s after Redis came back: " + str(
                    [(len(c.sessions), c.failed_attempts, len(c.sessions[-1].quotes)) for c in clients]
                )
                await asyncio.sleep(0.1)
            back = time.monotonic() - restarted

            closes = [session.close_code for c in clients for session in c.sessions if session.closed is not None]
            assert set(closes) <= {1012}, f"a connection ended otherwise than 1012 (server restarting): {closes}"
            assert all(session.snapshot is not None for c in clients for session in c.sessions), (
                "every connection, reconnections included, began with a snapshot"
            )
            async with aioredis.from_url(private_redis.url) as redis:
                held = await leases_settle(redis, tenant, CLIENTS, within=LEASE_SECONDS)
                assert held == CLIENTS, f"{held} stream leases for {CLIENTS} open streams after the restart"
                # A new connection's snapshot carries every symbol again (the restart emptied the cache).
                async with ws_connect(web, tenant.host, tenant.session, SYMBOLS) as late:
                    snapshot = await recv_json(late, within=10)
                    assert snapshot["type"] == "snapshot", snapshot
                    assert {q["symbol"] for q in snapshot["quotes"]} == {"AAPL", "MSFT", "NVDA"}
                    assert all(q["ts"] > restarted_ms for q in snapshot["quotes"])
                    assert await leases_settle(redis, tenant, CLIENTS + 1, within=LEASE_SECONDS) == CLIENTS + 1
                    await expect_refused(web, tenant.host, tenant.session, SYMBOLS, 4429, "stream_limit")
                reconnects = sum(len(c.sessions) - 1 for c in clients)
                record_figure(
                    "fault: Redis restarted (2 s down, keys lost) → every client streaming fresh quotes again",
                    f"{back:.2f} s after Redis was back ({reconnects} reconnects with 1012, "
                    f"{sum(c.failed_attempts for c in clients)} failed attempts)",
                )
        async with aioredis.from_url(private_redis.url) as redis:
            assert await leases_settle(redis, tenant, 0, within=LEASE_SECONDS) == 0, "a closed stream kept its lease"
