"""Streaming state in Redis, shared by every web and feed process."""

import binascii
import functools
import time
from collections import defaultdict
from typing import Any

import orjson
import redis
from django.conf import settings
from redis import asyncio as aioredis

from .base import BARS_KEPT, MINUTE_MS, Bar, LeaseKind, StreamState, Watch

PREFIX = settings.STREAM_REDIS_PREFIX
WATCH_KEY_TTL_MS = 20_000  # a dead process's watches vanish after this
BARS_TTL_MS = 86_400_000  # a symbol nobody watches any more loses its minute bars after a day

# Remove expired leases, then take a place if one is free: atomically, so two web processes can never
# both take the last place. Nil when none was free; else the last quotes of ARGV[6…] (HMGET of KEYS[2],
# on the server of the last-quote cache), read after the place was taken.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return false end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if #ARGV < 6 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ARGV, 6))
"""
_RENEW_LEADER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""
# A symbol's bars: a list, oldest first, of "minute,open,high,low,close,volume" (minute = epoch ms / 60000;
# about 40 bytes a bar, 16 KB a day). ARGV[3…] merge in order: the last stored minute is replaced, newer
# ones appended, older ones ignored; the last ARGV[1] are kept and the key expires ARGV[2] ms later.
_MERGE_BARS = """
local key = KEYS[1]
local last = redis.call('LINDEX', key, -1)
local last_minute = last and tonumber(string.match(last, '^%d+')) or -1
for i = 3, #ARGV do
  local minute = tonumber(string.match(ARGV[i], '^%d+'))
  if minute == last_minute then
    redis.call('LSET', key, -1, ARGV[i])
  elseif minute > last_minute then
    redis.call('RPUSH', key, ARGV[i])
    last_minute = minute
  end
end
redis.call('LTRIM', key, -tonumber(ARGV[1]), -1)
redis.call('PEXPIRE', key, ARGV[2])
return 0
"""
_RELEASE_LEADER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _last_key(delay_minutes: int) -> str:
    return f"{PREFIX}last:{delay_minutes}"


def _lease_key(kind: LeaseKind, schema: str) -> str:
    return f"{PREFIX}lease:{kind.value}:{schema}"


def bars_sync(symbols: list[str]) -> dict[str, list[Bar]]:
    """Each symbol's stored minute bars (oldest first), read from synchronous code (views)."""
    with _sync().pipeline(transaction=False) as pipe:
        for symbol in symbols:
            pipe.lrange(_bars_key(symbol), 0, -1)
        lists = pipe.execute()
    return {symbol: [_bar_decode(raw) for raw in items] for symbol, items in zip(symbols, lists, strict=True) if items}


def feed_status_sync() -> dict[str, Any] | None:
    """The feed leader's last status (None when no leader has stored one lately), for synchronous code."""
    raw = _sync().get(PREFIX + "feed:status")
    return dict(orjson.loads(raw)) if raw else None


def _bar_encode(bar: Bar) -> str:
    return f"{bar.minute // MINUTE_MS},{bar.open!r},{bar.high!r},{bar.low!r},{bar.close!r},{bar.volume}"


def _bar_decode(raw: bytes) -> Bar:
    minute, open_, high, low, close, volume = raw.split(b",")
    return Bar(int(minute) * MINUTE_MS, float(open_), float(high), float(low), float(close), int(volume))


def _bars_key(symbol: str) -> str:
    return f"{PREFIX}bars:{symbol}"


def _sync() -> "redis.Redis[bytes]":
    return _sync_client(settings.REDIS_URL)


@functools.lru_cache(maxsize=4)
def _sync_client(url: str) -> "redis.Redis[bytes]":
    # One blocking client per URL for the life of the process (its pool is thread-safe).
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def lease_shard(schema: str, count: int) -> int:
    """Which of `count` lease servers (STREAM_LEASE_URLS) holds an organisation's leases.

    A hash of the schema name, the same in every process. All of an organisation's leases are on one
    server, so its limit is still checked atomically there; organisations spread over the servers.
    """
    return binascii.crc32(schema.encode()) % count


def _lease_url(schema: str) -> str:
    urls = settings.STREAM_LEASE_URLS
    return str(urls[lease_shard(schema, len(urls))])


def lease_ids_sync(kind: LeaseKind, schema: str) -> list[str]:
    """The organisation's live lease ids, read from synchronous code (views) with a blocking client.

    One client per process and server (its pool is thread-safe): an asyncio client made for each
    call's event loop (async_to_sync makes a new loop per call) would be one more Redis client per
    page view.
    """
    key = _lease_key(kind, schema)
    with _sync_client(_lease_url(schema)).pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(key, "-inf", _now_ms())
        pipe.zrange(key, 0, -1)
        _, members = pipe.execute()
    return [m.decode() for m in members]


def _async_client(url: str) -> "aioredis.Redis[bytes]":
    # A blocking pool waits for a free connection instead of raising MaxConnectionsError when
    # many clients disconnect at once; socket timeouts are longer than any blocking command.
    pool: Any = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=20, socket_timeout=15, socket_connect_timeout=5,
        health_check_interval=30, socket_keepalive=True,
    )  # fmt: skip
    return aioredis.Redis(connection_pool=pool)


class RedisStreamState(StreamState):
    """Everything on `url` (REDIS_URL), but the stream leases: on `lease_urls` (STREAM_LEASE_URLS),
    each organisation's on one of them (lease_shard)."""

    def __init__(self, url: str, lease_urls: list[str] | None = None) -> None:
        self.redis = _async_client(url)
        lease_urls = lease_urls or [url]
        self._lease_servers = [self.redis if lease_url == url else _async_client(lease_url) for lease_url in lease_urls]
        self._acquire_scripts = [server.register_script(_ACQUIRE) for server in self._lease_servers]
        self._renew_leader = self.redis.register_script(_RENEW_LEADER)
        self._release_leader = self.redis.register_script(_RELEASE_LEADER)
        self._merge_bars = self.redis.register_script(_MERGE_BARS)

    @staticmethod
    def _lease_ttl_ms() -> int:
        return int(settings.STREAM_LEASE_SECONDS * 1000)

    def _lease_shard(self, schema: str) -> int:
        return lease_shard(schema, len(self._lease_servers))

    def _leases_of(self, schema: str) -> "aioredis.Redis[bytes]":
        return self._lease_servers[self._lease_shard(schema)]

    async def lease_acquire(self, kind: LeaseKind, schema: str, lease_id: str, limit: int) -> bool:
        return await self._acquire(kind, schema, lease_id, limit, 0, []) is not None

    async def lease_acquire_reading(
        self, kind: LeaseKind, schema: str, lease_id: str, limit: int, delay_minutes: int, symbols: list[str]
    ) -> dict[str, bytes] | None:
        if self._leases_of(schema) is not self.redis:  # the leases live on a server of their own
            return await super().lease_acquire_reading(kind, schema, lease_id, limit, delay_minutes, symbols)
        values = await self._acquire(kind, schema, lease_id, limit, delay_minutes, symbols)
        if values is None:
            return None
        return {s: v for s, v in zip(symbols, values, strict=True) if v is not None}

    async def _acquire(
        self, kind: LeaseKind, schema: str, lease_id: str, limit: int, delay_minutes: int, symbols: list[str]
    ) -> list[bytes | None] | None:
        now = _now_ms()
        ttl = self._lease_ttl_ms()
        acquire = self._acquire_scripts[self._lease_shard(schema)]
        keys = [_lease_key(kind, schema), _last_key(delay_minutes)]
        args: list[str | int] = [now, now + ttl, lease_id, limit, ttl * 2, *symbols]
        result: list[bytes | None] | None = await acquire(keys=keys, args=args)
        return result

    async def lease_release(self, kind: LeaseKind, schema: str, lease_id: str) -> None:
        await self._leases_of(schema).zrem(_lease_key(kind, schema), lease_id)

    async def lease_refresh(self, leases: list[tuple[LeaseKind, str, str]]) -> None:
        expires = _now_ms() + self._lease_ttl_ms()
        # One ZADD per organisation's key with all its leases, not one per lease: 10,000 connections in
        # a process were 20,000 commands packed on the event loop every refresh, a 100-200 ms stall.
        by_key: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
        for kind, schema, lease_id in leases:
            by_key[(self._lease_shard(schema), _lease_key(kind, schema))][lease_id] = expires
        for shard in {shard for shard, _ in by_key}:
            async with self._lease_servers[shard].pipeline(transaction=False) as pipe:
                for (key_shard, key), members in by_key.items():
                    if key_shard == shard:
                        # Not `XX`: after a Redis restart or flush the open streams must count again.
                        pipe.zadd(key, members)  # type: ignore[arg-type]
                        pipe.pexpire(key, self._lease_ttl_ms() * 2)
                await pipe.execute()

    async def lease_count(self, kind: LeaseKind, schema: str) -> int:
        key = _lease_key(kind, schema)
        async with self._leases_of(schema).pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", _now_ms())
            pipe.zcard(key)
            _, count = await pipe.execute()
        return int(count)

    async def lease_ids(self, kind: LeaseKind, schema: str) -> list[str]:
        key = _lease_key(kind, schema)
        async with self._leases_of(schema).pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", _now_ms())
            pipe.zrange(key, 0, -1)
            _, members = await pipe.execute()
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]

    async def watches_update(self, process_id: str, added: set[Watch], removed: set[Watch], full: bool) -> None:
        key = f"{PREFIX}watch:{process_id}"
        async with self.redis.pipeline(transaction=True) as pipe:
            if full:
                pipe.delete(key)
            if removed and not full:
                pipe.srem(key, *(w.key() for w in removed))
            if added:
                pipe.sadd(key, *(w.key() for w in added))
            pipe.pexpire(key, WATCH_KEY_TTL_MS)
            if full or added or removed:
                pipe.incr(PREFIX + "watch-version")
            await pipe.execute()

    async def watches_touch(self, process_id: str) -> bool:
        return bool(await self.redis.pexpire(f"{PREFIX}watch:{process_id}", WATCH_KEY_TTL_MS))

    async def watches_version(self) -> int:
        return int(await self.redis.get(PREFIX + "watch-version") or 0)

    async def watch_keys(self) -> set[str]:
        keys = [key async for key in self.redis.scan_iter(match=f"{PREFIX}watch:*", count=1000)]
        if not keys:
            return set()
        members: set[bytes] = await self.redis.sunion(keys)  # type: ignore[assignment]
        return {member.decode() for member in members}

    async def last_quotes_store(self, delay_minutes: int, encoded: dict[str, bytes]) -> None:
        if encoded:
            await self.redis.hset(_last_key(delay_minutes), mapping=encoded)  # type: ignore[arg-type]

    async def last_quotes(self, delay_minutes: int, symbols: list[str]) -> dict[str, bytes]:
        if not symbols:
            return {}
        values = await self.redis.hmget(_last_key(delay_minutes), symbols)
        return {s: v for s, v in zip(symbols, values, strict=True) if v is not None}

    async def delay_history_started(self, delay_minutes: int, symbols: dict[str, int] | None = None) -> dict[str, int]:
        key = f"{PREFIX}history:{delay_minutes}"
        if symbols:
            async with self.redis.pipeline(transaction=False) as pipe:
                for symbol, ts in symbols.items():
                    pipe.hsetnx(key, symbol, ts)
                pipe.pexpire(key, (delay_minutes * 60 + 3600) * 1000)
                await pipe.execute()
        raw = await self.redis.hgetall(key)
        return {k.decode(): int(v) for k, v in raw.items()}

    async def delay_history_reset(self) -> None:
        keys = [key async for key in self.redis.scan_iter(match=f"{PREFIX}history:*", count=500)]
        if keys:
            await self.redis.delete(*keys)

    async def bars_merge(self, bars: dict[str, list[Bar]]) -> None:
        added = {symbol: items for symbol, items in bars.items() if items}
        if not added:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for symbol, items in added.items():
                args: list[int | str] = [BARS_KEPT, BARS_TTL_MS, *map(_bar_encode, items)]
                await self._merge_bars(keys=[_bars_key(symbol)], args=args, client=pipe)
            await pipe.execute()

    async def bars_replace(self, bars: dict[str, list[Bar]]) -> None:
        if not bars:
            return
        async with self.redis.pipeline(transaction=True) as pipe:  # readers never see a symbol's bars gone
            for symbol, items in bars.items():
                key = _bars_key(symbol)
                pipe.delete(key)
                if items:
                    pipe.rpush(key, *map(_bar_encode, items[-BARS_KEPT:]))
                    pipe.pexpire(key, BARS_TTL_MS)
            await pipe.execute()

    async def feed_status_store(self, status: dict[str, Any], ttl_ms: int) -> None:
        await self.redis.set(PREFIX + "feed:status", orjson.dumps(status), px=ttl_ms)

    async def feed_status(self) -> dict[str, Any] | None:
        raw = await self.redis.get(PREFIX + "feed:status")
        return dict(orjson.loads(raw)) if raw else None

    async def leader_acquire(self, holder: str, ttl_ms: int) -> bool:
        return bool(await self._renew_leader(keys=[PREFIX + "feed:leader"], args=[holder, ttl_ms]))

    async def leader_release(self, holder: str) -> None:
        await self._release_leader(keys=[PREFIX + "feed:leader"], args=[holder])
