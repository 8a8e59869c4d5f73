"""Alerts' shared state: which organisations' alerts changed, and the last price each alert book saw.

Redis backs it when REDIS_URL is set (web processes write, every feed process reads); otherwise one
process keeps it in memory (dev mode without Redis, where the web process runs the feed itself).

* Changes: a service that changes an organisation's alerts marks its schema after commit. One Lua
  call takes the next number of a counter and scores the schema with it in a sorted set, so an
  engine that remembers the highest score it has seen asks for exactly the schemas changed since
  (`ZRANGEBYSCORE (seen +inf`), and a second feed process reading the same set misses nothing.
* Last prices: the leading engine writes the price and change % it last evaluated per (delay,
  symbol) twice a second. An engine that starts leading (a failover) starts from them, so a level
  crossed while no leader was running is still seen as crossed, once.
"""

import functools
import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from redis import asyncio as aioredis
from redis.commands.core import Script

from .conf import alert_settings

# Take the next number and score the schema with it, atomically: numbers are handed out in the order
# the set receives them, so "changed since N" never skips a change made by a slower writer.
_MARK_CHANGED = """
local n = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], n, ARGV[1])
return n
"""


@dataclass(frozen=True, slots=True)
class LastPrice:
    price: float
    change_pct: float
    stored_ms: int


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _keys() -> tuple[str, str]:
    prefix = alert_settings.redis_prefix
    return prefix + "changed-seq", prefix + "changed"


def _prices_key(delay_minutes: int) -> str:
    return f"{alert_settings.redis_prefix}last:{delay_minutes}"


@functools.lru_cache(maxsize=4)
def _mark_script(url: str) -> Script:
    # One blocking client per URL for the life of the process (its pool is thread-safe).
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5).register_script(_MARK_CHANGED)


class _Memory:
    """The one-process stand-in for Redis."""

    seq = 0
    changed: dict[str, int] = {}
    prices: dict[int, dict[str, LastPrice]] = {}


def alerts_changed_mark(*, schema_name: str) -> None:
    """Tell every feed process's alert engine to reload this organisation's alerts (call after commit)."""
    if not settings.REDIS_URL:
        _Memory.seq += 1
        _Memory.changed[schema_name] = _Memory.seq
        return
    _mark_script(settings.REDIS_URL)(keys=list(_keys()), args=[schema_name])


class AlertStore:
    """The engine's side, on its event loop."""

    def __init__(self) -> None:
        self.redis: aioredis.Redis[bytes] | None = None
        if settings.REDIS_URL:
            pool: Any = aioredis.BlockingConnectionPool.from_url(
                settings.REDIS_URL, max_connections=8, timeout=20, socket_timeout=15, socket_connect_timeout=5
            )
            self.redis = aioredis.Redis(connection_pool=pool)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.connection_pool.disconnect()

    async def changed_seq(self) -> int:
        """The highest change number handed out so far (cheap to poll)."""
        if self.redis is None:
            return _Memory.seq
        return int(await self.redis.get(_keys()[0]) or 0)

    async def changed_since(self, seen: int) -> tuple[int, set[str]]:
        """Schemas changed after change number `seen`, and the highest number among them."""
        if self.redis is None:
            changed = {schema for schema, n in _Memory.changed.items() if n > seen}
            return max([seen, *(_Memory.changed[s] for s in changed)]), changed
        rows = await self.redis.zrangebyscore(_keys()[1], f"({seen}", "+inf", withscores=True)
        schemas = {member.decode() if isinstance(member, bytes) else str(member) for member, _ in rows}
        return max([seen, *(int(score) for _, score in rows)]), schemas

    async def prices_load(self, delay_minutes: int) -> dict[str, LastPrice]:
        """The last prices evaluated at this delay (kept a day: the market may have been closed since)."""
        if self.redis is None:
            return dict(_Memory.prices.get(delay_minutes, {}))
        raw = await self.redis.hgetall(_prices_key(delay_minutes))
        return {k.decode(): _price_parse(v.decode()) for k, v in raw.items()}

    async def prices_store(self, delay_minutes: int, prices: dict[str, tuple[float, float]]) -> None:
        if not prices:
            return
        now = _now_ms()
        if self.redis is None:
            book = _Memory.prices.setdefault(delay_minutes, {})
            book.update({s: LastPrice(p, c, now) for s, (p, c) in prices.items()})
            return
        mapping = {symbol: f"{price!r}|{pct!r}|{now}" for symbol, (price, pct) in prices.items()}
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(_prices_key(delay_minutes), mapping=mapping)  # type: ignore[arg-type]
            pipe.pexpire(_prices_key(delay_minutes), 86_400_000)
            await pipe.execute()


def _price_parse(raw: str) -> LastPrice:
    price, pct, stored = raw.split("|")
    return LastPrice(float(price), float(pct), int(stored))
