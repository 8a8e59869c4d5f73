"""The publisher's tick batches as the systems' feeds read them: one Redis pub/sub subscription."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import redis.asyncio as redis

logger = logging.getLogger("bench.ticks")
SUBSCRIBED = "subscribed to"  # logged once subscribed: the orchestrator waits for it


async def tick_batches(redis_url: str, channel: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Each published message, decoded: a list of SPEC Quote objects."""
    async with redis.Redis.from_url(redis_url) as client, client.pubsub() as pubsub:
        await pubsub.subscribe(channel)
        logger.warning("%s %s", SUBSCRIBED, channel)
        async for message in pubsub.listen():
            if message["type"] == "message":
                yield orjson.loads(message["data"])
