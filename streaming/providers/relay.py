"""Quotes that another process publishes on a Redis channel: the bench's publisher, or a custom bridge.

Each message is one JSON array of SPEC Quote objects. Invalid items are dropped and counted (a
warning at most every few seconds), so one bad publisher cannot stop the feed.
"""

import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
import redis.asyncio as aioredis

from streaming.quotes import Quote

from .base import MarketDataProvider

logger = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 10.0
_FIELDS: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("price", (int, float)),
    ("bid", (int, float)),
    ("ask", (int, float)),
    ("volume", int),
    ("change", (int, float)),
    ("change_pct", (int, float)),
    ("ts", int),
)


def quote_parse(item: Any) -> Quote | None:
    """A Quote from one published object, or None when a field is missing or of the wrong type."""
    if not isinstance(item, dict) or not isinstance(symbol := item.get("symbol"), str) or not symbol:
        return None
    for name, kind in _FIELDS:
        value = item.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            return None
    return Quote(
        symbol=symbol,
        price=float(item["price"]),
        bid=float(item["bid"]),
        ask=float(item["ask"]),
        volume=item["volume"],
        change=float(item["change"]),
        change_pct=float(item["change_pct"]),
        ts=item["ts"],
    )


class RelayProvider(MarketDataProvider):
    """Subscribes to one Redis pub/sub channel; yields the subscribed symbols' quotes of each message."""

    name = "relay"

    def __init__(self, *, redis_url: str, channel: str) -> None:
        self.redis_url = redis_url
        self.channel = channel
        self._symbols: set[str] = set()
        # Any: types-redis predates redis-py 5's aclose().
        self._redis: Any = None
        self._pubsub: Any = None
        self.rejected = 0
        self._warned_at = 0.0

    async def start(self) -> None:
        self._redis = aioredis.Redis.from_url(self.redis_url)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.channel)

    async def stop(self) -> None:
        pubsub, client, self._pubsub, self._redis = self._pubsub, self._redis, None, None
        if pubsub is not None:
            await pubsub.aclose()
        if client is not None:
            await client.aclose()

    async def subscribe(self, symbols: Iterable[str]) -> None:
        self._symbols |= set(symbols)

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        self._symbols -= set(symbols)

    async def quotes(self) -> AsyncIterator[list[Quote]]:
        if self._pubsub is None:
            raise RuntimeError("RelayProvider.start() was not called")
        async for message in self._pubsub.listen():
            if message.get("type") != "message":
                continue
            batch = self._batch(message["data"])
            if batch:
                yield batch

    def _batch(self, data: bytes) -> list[Quote]:
        try:
            items = orjson.loads(data)
        except orjson.JSONDecodeError:
            items = None
        if not isinstance(items, list):
            self._reject(1, "a message that is not a JSON array")
            return []
        batch, bad = [], 0
        wanted = self._symbols
        for item in items:
            quote = quote_parse(item)
            if quote is None:
                bad += 1
            elif quote.symbol in wanted:
                batch.append(quote)
        if bad:
            self._reject(bad, "quotes with a missing or mistyped field")
        return batch

    def _reject(self, count: int, what: str) -> None:
        self.rejected += count
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            logger.warning("relay %s: dropped %s (%d dropped so far)", self.channel, what, self.rejected)
