"""Shared streaming state: stream leases, the watch registry, the last-quote cache, minute bars, the feed lock.

Redis backs it when REDIS_URL is set (several processes); otherwise one process keeps it in memory
(dev mode without Redis). `stream_state()` returns the backend for the running event loop.
"""

import asyncio
from typing import Any

from django.conf import settings

from .base import BARS_KEPT, MINUTE_MS, Bar, LeaseKind, StreamState, Watch
from .memory import MemoryStreamState

_states: dict[asyncio.AbstractEventLoop, StreamState] = {}
_memory_state = MemoryStreamState()


def stream_state() -> StreamState:
    """The state backend of the running event loop (one Redis client per loop)."""
    if not settings.REDIS_URL:
        return _memory_state
    loop = asyncio.get_running_loop()
    state = _states.get(loop)
    if state is None:
        from .redis import RedisStreamState

        state = _states[loop] = RedisStreamState(settings.REDIS_URL, list(settings.STREAM_LEASE_URLS))
    return state


def lease_ids_sync(kind: LeaseKind, schema: str) -> list[str]:
    """The organisation's live lease ids, for synchronous code such as views (no event loop needed)."""
    if not settings.REDIS_URL:
        return _memory_state.lease_ids_now(kind, schema)
    from .redis import lease_ids_sync as redis_lease_ids

    return redis_lease_ids(kind, schema)


def bars_sync(symbols: list[str]) -> dict[str, list[Bar]]:
    """Stored minute bars, oldest first, per symbol that has any; for synchronous code (views)."""
    if not settings.REDIS_URL:
        return _memory_state.bars_now(symbols)
    from .redis import bars_sync as redis_bars

    return redis_bars(symbols)


def feed_status_sync() -> dict[str, Any] | None:
    """The feed leader's last status, or None when no leader has stored one lately; for synchronous code."""
    if not settings.REDIS_URL:
        return _memory_state.feed_status_now()
    from .redis import feed_status_sync as redis_feed_status

    return redis_feed_status()


__all__ = [
    "BARS_KEPT",
    "MINUTE_MS",
    "Bar",
    "LeaseKind",
    "StreamState",
    "Watch",
    "bars_sync",
    "feed_status_sync",
    "lease_ids_sync",
    "stream_state",
]
