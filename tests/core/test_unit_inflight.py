"""core.inflight.InFlight: concurrent misses of one key load once; a failure stays its caller's."""

import asyncio

import pytest

from core.inflight import InFlight


class Cache:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.loads = 0

    def cached(self, key: str) -> tuple[bool, int]:
        return (key in self.values, self.values.get(key, 0))

    async def load(self, key: str, value: int, fail: bool = False) -> int:
        self.loads += 1
        await asyncio.sleep(0.05)
        if fail:
            raise ConnectionError("the database went away")
        self.values[key] = value
        return value


async def test_concurrent_misses_of_one_key_load_once_and_read_what_it_left() -> None:
    inflight, cache = InFlight(), Cache()
    results = await asyncio.gather(
        *(inflight.get("a", lambda: cache.cached("a"), lambda: cache.load("a", 7)) for _ in range(50))
    )
    assert results == [7] * 50
    assert cache.loads == 1


async def test_other_keys_load_on_their_own_and_a_hit_loads_nothing() -> None:
    inflight, cache = InFlight(), Cache()
    await asyncio.gather(
        inflight.get("a", lambda: cache.cached("a"), lambda: cache.load("a", 1)),
        inflight.get("b", lambda: cache.cached("b"), lambda: cache.load("b", 2)),
    )
    assert cache.loads == 2
    assert await inflight.get("a", lambda: cache.cached("a"), lambda: cache.load("a", 99)) == 1
    assert cache.loads == 2


async def test_a_failed_load_fails_its_caller_only_and_the_waiters_load_themselves() -> None:
    inflight, cache = InFlight(), Cache()
    first = asyncio.ensure_future(inflight.get("a", lambda: cache.cached("a"), lambda: cache.load("a", 1, fail=True)))
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(inflight.get("a", lambda: cache.cached("a"), lambda: cache.load("a", 5)))
    with pytest.raises(ConnectionError):
        await first
    assert await waiter == 5
    assert cache.loads == 2


async def test_a_cancelled_load_lets_the_waiters_go_on() -> None:
    inflight, cache = InFlight(), Cache()
    first = asyncio.ensure_future(inflight.get("a", lambda: cache.cached("a"), lambda: cache.load("a", 1)))
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(inflight.get("a", lambda: cache.cached("a"), lambda: cache.load("a", 3)))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await waiter == 3
    assert inflight._running == {}
