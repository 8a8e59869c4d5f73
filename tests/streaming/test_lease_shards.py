"""Stream leases spread over two Redis servers (STREAM_LEASE_URLS): each organisation's on one server,
its limit still atomic there, and the limit still holding across two web processes."""

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from streaming.state import LeaseKind, lease_ids_sync
from streaming.state.redis import PREFIX, RedisStreamState, lease_shard
from tests.live import LiveServer, stream_environment, uvicorn_server
from tests.streaming import live_support
from tests.streaming.conftest import Committed, Tenant
from tests.streaming.live_support import expect_refused, recv_json, ws_connect

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="LOUD SKIP: stream leases in Redis need REDIS_URL")

SCHEMAS = [f"org_shard{n}" for n in range(40)]


@pytest.fixture
async def sharded(two_redis_servers: list[str]) -> AsyncIterator[RedisStreamState]:
    """Shared state on REDIS_URL, leases on the two servers of their own."""
    state = RedisStreamState(settings.REDIS_URL, two_redis_servers)
    yield state
    for server in {id(s): s for s in [state.redis, *state._lease_servers]}.values():
        await server.close()


def lease_keys(url: str) -> set[str]:
    client = redis.Redis.from_url(url)
    try:
        return {key.decode() for key in client.scan_iter(match=f"{PREFIX}lease:*")}
    finally:
        client.close()


async def test_each_organisation_s_leases_live_on_one_server_and_organisations_spread(
    sharded: RedisStreamState, two_redis_servers: list[str]
) -> None:
    for schema in SCHEMAS:
        taken = [await sharded.lease_acquire(LeaseKind.STREAM, schema, f"lease-{n}", limit=2) for n in range(3)]
        assert taken == [True, True, False], f"{schema}: the limit is checked on its server"
    keys = [lease_keys(url) for url in two_redis_servers]
    assert keys[0].isdisjoint(keys[1])
    assert len(keys[0]) + len(keys[1]) == len(SCHEMAS)
    assert min(len(k) for k in keys) >= len(SCHEMAS) // 4, f"both servers hold leases: {[len(k) for k in keys]}"
    for schema in SCHEMAS:
        home = two_redis_servers[lease_shard(schema, 2)]
        assert f"{PREFIX}lease:streams:{schema}" in lease_keys(home)
        assert await sharded.lease_count(LeaseKind.STREAM, schema) == 2
        assert sorted(await sharded.lease_ids(LeaseKind.STREAM, schema)) == ["lease-0", "lease-1"]


async def test_a_place_and_the_snapshot_s_quotes_come_from_their_own_servers(
    sharded: RedisStreamState, two_redis_servers: list[str]
) -> None:
    delay = 997  # a cache of its own on the shared REDIS_URL
    await sharded.last_quotes_store(delay, {"AAPL": b"aapl"})
    try:
        for schema in SCHEMAS[:8]:
            taken = await sharded.lease_acquire_reading(LeaseKind.STREAM, schema, "a", 1, delay, ["AAPL", "KO"])
            assert taken == {"AAPL": b"aapl"}
            assert await sharded.lease_acquire_reading(LeaseKind.STREAM, schema, "b", 1, delay, ["AAPL"]) is None
            assert f"{PREFIX}lease:streams:{schema}" in lease_keys(two_redis_servers[lease_shard(schema, 2)])
    finally:
        await sharded.redis.delete(f"{PREFIX}last:{delay}")


async def test_release_and_refresh_go_to_the_organisation_s_server(
    sharded: RedisStreamState, two_redis_servers: list[str]
) -> None:
    leases = [(LeaseKind.WIDGET, schema, f"viewer-{schema}") for schema in SCHEMAS]
    for kind, schema, lease_id in leases:
        assert await sharded.lease_acquire(kind, schema, lease_id, limit=1)
    redis.Redis.from_url(two_redis_servers[0]).flushall()  # one lease server restarts empty
    await sharded.lease_refresh(leases)  # every open viewer counts again, on its own server
    for kind, schema, lease_id in leases:
        assert await sharded.lease_ids(kind, schema) == [lease_id]
        assert not await sharded.lease_acquire(kind, schema, "another", limit=1)
    await sharded.lease_release(*leases[0])
    assert await sharded.lease_acquire(leases[0][0], leases[0][1], "another", limit=1)


async def test_views_read_leases_from_the_organisation_s_server(
    sharded: RedisStreamState, two_redis_servers: list[str]
) -> None:
    for schema in SCHEMAS[:6]:
        await sharded.lease_acquire(LeaseKind.STREAM, schema, f"page-{schema}", limit=5)
    with override_settings(STREAM_LEASE_URLS=two_redis_servers):
        found = await asyncio.to_thread(lambda: {s: lease_ids_sync(LeaseKind.STREAM, s) for s in SCHEMAS[:6]})
    assert found == {schema: [f"page-{schema}"] for schema in SCHEMAS[:6]}


# -- two web processes, leases on two servers ------------------------------------------------------

db = live_support.db


@pytest.fixture
def two_webs_sharded(db: None, committed: Committed, two_redis_servers: list[str]) -> Iterator[list[LiveServer]]:
    env = stream_environment(STREAM_LEASE_URLS=",".join(two_redis_servers))
    with uvicorn_server(**env) as first, uvicorn_server(**env) as second:
        yield [first, second]


@pytest.mark.live
async def test_the_stream_limit_holds_across_two_web_processes_with_sharded_leases(
    committed: Committed, two_webs_sharded: list[LiveServer], two_redis_servers: list[str]
) -> None:
    plan = await committed.plan(max_streams=1)
    tenants: list[Tenant] = []
    homes: set[int] = set()
    while homes != {0, 1}:  # organisations on both lease servers (their slugs are random)
        assert len(tenants) < 16, "16 organisations all hashed to one server"
        tenants.append(await committed.tenant(plan))
        homes.add(lease_shard(tenants[-1].organisation.schema_name, 2))
    first, second = two_webs_sharded
    for tenant in tenants:
        async with ws_connect(first, tenant.host, tenant.session, "symbols=AAPL") as ws:
            assert (await recv_json(ws, within=10))["type"] == "snapshot"
            await expect_refused(second, tenant.host, tenant.session, "symbols=AAPL", 4429, "stream_limit")
            home = two_redis_servers[lease_shard(tenant.organisation.schema_name, 2)]
            assert f"{PREFIX}lease:streams:{tenant.organisation.schema_name}" in lease_keys(home)
