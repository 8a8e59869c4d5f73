"""Both streaming-state backends (memory and Redis) keep the same promises: leases, leader lock, watches, caches.

Each Redis test uses its own key prefix, so it neither sees nor disturbs the keys (and the feed leader
lock) of other test runs on the same Redis; its keys are deleted afterwards.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from django.conf import settings as django_settings
from pytest_django.fixtures import Settings

from streaming.state import LeaseKind, StreamState, Watch
from streaming.state import redis as redis_state
from streaming.state.memory import MemoryStreamState
from streaming.state.redis import RedisStreamState

LEASE_SECONDS = 0.5


@contextlib.asynccontextmanager
async def redis_backend(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RedisStreamState]:
    """A Redis state under a key prefix of its own (created inside the test's running loop)."""
    if not django_settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    prefix = f"tdunit:{uuid.uuid4().hex[:10]}:"
    monkeypatch.setattr(redis_state, "PREFIX", prefix)
    backend = RedisStreamState(django_settings.REDIS_URL)
    try:
        yield backend
    finally:
        keys = [key async for key in backend.redis.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await backend.redis.delete(*keys)
        await backend.redis.aclose()  # type: ignore[attr-defined]  # (types-redis predates aclose)
        await backend.redis.connection_pool.disconnect()


@pytest.fixture(autouse=True)
def short_leases(settings: Settings) -> None:
    settings.STREAM_LEASE_SECONDS = LEASE_SECONDS


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[StreamState]:
    if request.param == "memory":
        yield MemoryStreamState()
        return
    async with redis_backend(monkeypatch) as backend:
        yield backend


@pytest.fixture
async def redis_only(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RedisStreamState]:
    """Leases expire only in Redis (the memory backend lives and dies with its one process)."""
    async with redis_backend(monkeypatch) as backend:
        yield backend


def schema() -> str:
    return f"org_{uuid.uuid4().hex[:12]}"


async def watches_of(state: StreamState) -> set[Watch]:
    """Every live process's watches, read as the feed reads them (`watch_keys`)."""
    return {Watch.from_key(key) for key in await state.watch_keys()}


# -- leases ------------------------------------------------------------------------------------------


async def test_leases_up_to_the_limit_then_refused(state: StreamState) -> None:
    org = schema()
    for n in range(3):
        assert await state.lease_acquire(LeaseKind.STREAM, org, f"lease-{n}", limit=3)
    assert await state.lease_count(LeaseKind.STREAM, org) == 3
    assert not await state.lease_acquire(LeaseKind.STREAM, org, "lease-3", limit=3)
    assert await state.lease_count(LeaseKind.STREAM, org) == 3


async def test_releasing_a_lease_frees_a_place(state: StreamState) -> None:
    org = schema()
    assert await state.lease_acquire(LeaseKind.STREAM, org, "a", limit=2)
    assert await state.lease_acquire(LeaseKind.STREAM, org, "b", limit=2)
    assert not await state.lease_acquire(LeaseKind.STREAM, org, "c", limit=2)
    await state.lease_release(LeaseKind.STREAM, org, "a")
    assert await state.lease_count(LeaseKind.STREAM, org) == 1
    assert await state.lease_acquire(LeaseKind.STREAM, org, "c", limit=2)
    await state.lease_release(LeaseKind.STREAM, org, "not-held")
    assert await state.lease_count(LeaseKind.STREAM, org) == 2


async def test_leases_are_counted_per_organisation_and_kind(state: StreamState) -> None:
    first, second = schema(), schema()
    assert await state.lease_acquire(LeaseKind.STREAM, first, "a", limit=1)
    assert await state.lease_acquire(LeaseKind.STREAM, second, "a", limit=1)
    assert await state.lease_acquire(LeaseKind.WIDGET, first, "a", limit=1)
    assert not await state.lease_acquire(LeaseKind.STREAM, first, "b", limit=1)
    assert await state.lease_count(LeaseKind.STREAM, first) == 1
    assert await state.lease_count(LeaseKind.WIDGET, first) == 1
    assert await state.lease_count(LeaseKind.WIDGET, second) == 0
    assert await state.lease_count(LeaseKind.STREAM, schema()) == 0


async def test_a_limit_of_zero_refuses_everyone(state: StreamState) -> None:
    org = schema()
    assert not await state.lease_acquire(LeaseKind.WIDGET, org, "a", limit=0)
    assert await state.lease_count(LeaseKind.WIDGET, org) == 0


async def test_a_place_taken_with_the_snapshot_s_quotes_of_its_delay(state: StreamState) -> None:
    org = schema()
    await state.last_quotes_store(0, {"AAPL": b"realtime-aapl", "MSFT": b"realtime-msft"})
    await state.last_quotes_store(15, {"AAPL": b"delayed-aapl"})
    taken = await state.lease_acquire_reading(LeaseKind.STREAM, org, "a", 2, 0, ["AAPL", "KO", "MSFT"])
    assert taken == {"AAPL": b"realtime-aapl", "MSFT": b"realtime-msft"}, "KO has no quote yet"
    assert await state.lease_acquire_reading(LeaseKind.STREAM, org, "b", 2, 15, ["AAPL", "MSFT"]) == {
        "AAPL": b"delayed-aapl"
    }
    assert await state.lease_acquire_reading(LeaseKind.STREAM, org, "c", 2, 0, ["AAPL"]) is None, "the plan's 2 taken"
    assert sorted(await state.lease_ids(LeaseKind.STREAM, org)) == ["a", "b"]
    await state.lease_release(LeaseKind.STREAM, org, "a")
    assert await state.lease_acquire_reading(LeaseKind.WIDGET, org, "w", 1, 0, []) == {}, "taken, nothing to read"
    assert await state.lease_acquire_reading(LeaseKind.STREAM, org, "d", 2, 0, ["KO"]) == {}


async def test_an_unrefreshed_lease_expires_and_a_refreshed_one_stays(redis_only: RedisStreamState) -> None:
    state, org = redis_only, schema()
    assert await state.lease_acquire(LeaseKind.STREAM, org, "kept", limit=2)
    assert await state.lease_acquire(LeaseKind.STREAM, org, "abandoned", limit=2)
    assert not await state.lease_acquire(LeaseKind.STREAM, org, "newcomer", limit=2)
    for _ in range(8):  # 0.8 s in all, well past the 0.5 s lease
        await asyncio.sleep(LEASE_SECONDS * 0.2)
        await state.lease_refresh([(LeaseKind.STREAM, org, "kept")])
    assert await state.lease_count(LeaseKind.STREAM, org) == 1
    assert await state.lease_acquire(LeaseKind.STREAM, org, "newcomer", limit=2)
    assert not await state.lease_acquire(LeaseKind.STREAM, org, "another", limit=2)


async def test_a_refresh_re_creates_leases_lost_in_a_redis_flush(redis_only: RedisStreamState) -> None:
    """After a Redis restart or flush, open streams must count against max_streams again."""
    state, org = redis_only, schema()
    assert await state.lease_acquire(LeaseKind.STREAM, org, "a", limit=1)
    await state.redis.delete(*[key async for key in state.redis.scan_iter(match=f"{redis_state.PREFIX}lease:*")])
    assert await state.lease_count(LeaseKind.STREAM, org) == 0
    await state.lease_refresh([(LeaseKind.STREAM, org, "a")])
    assert await state.lease_count(LeaseKind.STREAM, org) == 1
    assert not await state.lease_acquire(LeaseKind.STREAM, org, "b", limit=1)


async def test_every_lease_expires_without_refreshes(redis_only: RedisStreamState) -> None:
    state, org = redis_only, schema()
    for n in range(3):
        assert await state.lease_acquire(LeaseKind.WIDGET, org, f"viewer-{n}", limit=3)
    await asyncio.sleep(LEASE_SECONDS + 0.2)
    assert await state.lease_count(LeaseKind.WIDGET, org) == 0


# -- leader lock ---------------------------------------------------------------------------------------


async def test_one_leader_at_a_time_and_the_holder_renews(state: StreamState) -> None:
    assert await state.leader_acquire("feed-a", 1000)
    assert not await state.leader_acquire("feed-b", 1000)
    for _ in range(5):  # renewals keep feed-a leading past its first TTL
        await asyncio.sleep(0.25)
        assert await state.leader_acquire("feed-a", 1000)
        assert not await state.leader_acquire("feed-b", 1000)


async def test_another_holder_takes_over_once_the_ttl_lapses(state: StreamState) -> None:
    assert await state.leader_acquire("feed-a", 200)
    await asyncio.sleep(0.3)
    assert await state.leader_acquire("feed-b", 200)
    assert not await state.leader_acquire("feed-a", 200)


async def test_release_lets_another_take_the_lead_at_once(state: StreamState) -> None:
    assert await state.leader_acquire("feed-a", 10_000)
    await state.leader_release("feed-b")  # not the holder: no effect
    assert not await state.leader_acquire("feed-b", 10_000)
    await state.leader_release("feed-a")
    assert await state.leader_acquire("feed-b", 10_000)
    assert not await state.leader_acquire("feed-a", 10_000)


# -- watch registry ------------------------------------------------------------------------------------


async def test_watches_add_remove_and_full_per_process(state: StreamState) -> None:
    org_a, org_b = schema(), schema()
    aapl, msft, ko = Watch(org_a, 0, "AAPL"), Watch(org_a, 0, "MSFT"), Watch(org_b, 15, "KO")
    assert await watches_of(state) == set()

    await state.watches_update("web-1", {aapl, msft}, set(), full=False)
    await state.watches_update("web-2", {aapl, ko}, set(), full=False)
    assert await watches_of(state) == {aapl, msft, ko}

    await state.watches_update("web-1", set(), {aapl, msft}, full=False)
    assert await watches_of(state) == {aapl, ko}, "web-2 still watches AAPL"

    await state.watches_update("web-2", {msft}, {aapl}, full=True)
    assert await watches_of(state) == {msft}, "a full update replaces the process's set"

    await state.watches_update("web-2", set(), set(), full=True)
    assert await watches_of(state) == set()


async def test_touching_watches_keeps_them_without_a_new_version(state: StreamState) -> None:
    watch = Watch(schema(), 0, "AAPL")
    assert await state.watches_touch("web-1") is False, "nothing recorded yet: the hub must write its full set"
    await state.watches_update("web-1", {watch}, set(), full=False)
    version = await state.watches_version()
    assert await state.watches_touch("web-1") is True
    assert await state.watches_version() == version, "a heartbeat must not make the feed rebuild its index"
    assert await watches_of(state) == {watch}


async def test_watches_round_trip_every_field(state: StreamState) -> None:
    watch = Watch("org_" + "x" * 59, 30, "BRK.B")
    await state.watches_update("web-1", {watch}, set(), full=False)
    (stored,) = await watches_of(state)
    assert stored == watch
    assert isinstance(stored.delay_minutes, int)


# -- last-quote cache and delay history ----------------------------------------------------------------


async def test_last_quotes_round_trip_per_delay(state: StreamState) -> None:
    await state.last_quotes_store(0, {"AAPL": b'{"symbol":"AAPL","price":1}', "MSFT": b'{"symbol":"MSFT"}'})
    await state.last_quotes_store(0, {"AAPL": b'{"symbol":"AAPL","price":2}'})
    await state.last_quotes_store(15, {"AAPL": b'{"symbol":"AAPL","price":0}'})
    await state.last_quotes_store(15, {})
    assert await state.last_quotes(0, ["AAPL", "MSFT", "KO"]) == {
        "AAPL": b'{"symbol":"AAPL","price":2}',
        "MSFT": b'{"symbol":"MSFT"}',
    }
    assert await state.last_quotes(15, ["AAPL", "MSFT"]) == {"AAPL": b'{"symbol":"AAPL","price":0}'}
    assert await state.last_quotes(30, ["AAPL"]) == {}
    assert await state.last_quotes(0, []) == {}


async def test_delay_history_keeps_the_first_start_and_resets(state: StreamState) -> None:
    assert await state.delay_history_started(15) == {}
    assert await state.delay_history_started(15, {"AAPL": 1000, "MSFT": 2000}) == {"AAPL": 1000, "MSFT": 2000}
    assert await state.delay_history_started(15, {"AAPL": 5000, "KO": 6000}) == {
        "AAPL": 1000,
        "MSFT": 2000,
        "KO": 6000,
    }
    await state.delay_history_started(30, {"AAPL": 7000})
    assert await state.delay_history_started(15) == {"AAPL": 1000, "MSFT": 2000, "KO": 6000}
    assert await state.delay_history_started(30) == {"AAPL": 7000}

    await state.delay_history_reset()
    assert await state.delay_history_started(15) == {}
    assert await state.delay_history_started(30) == {}
    assert await state.delay_history_started(15, {"AAPL": 9000}) == {"AAPL": 9000}
