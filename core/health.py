"""Liveness and readiness checks: the database and the channel layer."""

import functools
import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from streaming.state import feed_status_sync

CHECK_TIMEOUT_SECONDS = 2
REASON_MAX_CHARS = 300


def readiness_checks() -> dict[str, str]:
    """Each dependency's state: "ok" or the reason it cannot be used (for operators' eyes only).

    With FEED_STALE_SECONDS set, the market-data feed counts too: no leader status for that long fails.
    """
    checks = {"database": _database_state(), "channel_layer": _channel_layer_state()}
    # The in-process feed of single-process dev mode starts with the first stream: nothing to watch apart.
    if settings.FEED_STALE_SECONDS > 0 and not settings.STREAM_FEED_IN_PROCESS:
        checks["feed"] = _feed_state(float(settings.FEED_STALE_SECONDS))
    return checks


def feed_details() -> dict[str, Any] | None:
    """The feed leader's status (provider, connection, last quote, unserved symbols, errors), or None."""
    try:
        return feed_status_sync()
    except RedisError:
        return None


def _feed_state(stale_seconds: float) -> str:
    try:
        status = feed_status_sync()
    except RedisError as exc:
        return _unreachable(exc)
    if status is None:
        return "no feed leader: no run_feed process holds the lock (or none has reported for a few seconds)"
    age = time.time() - int(status.get("stored_ms", 0)) / 1000
    if age > stale_seconds:
        return f"stale: the feed leader last reported {age:.0f} s ago"
    return "ok"


def _unreachable(exc: Exception) -> str:
    return f"unreachable: {exc.__class__.__name__}: {exc}"[:REASON_MAX_CHARS]


def _database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return _unreachable(exc)
    return "ok"


@functools.lru_cache(maxsize=4)
def _redis_client(url: str) -> "Redis[bytes]":
    """One client, so one pooled connection, per URL for the life of the process.

    Load balancers probe every few seconds on every process: a connection per probe was a TCP
    handshake and a Redis client slot each time. One retry without back-off reconnects a pooled
    connection that a Redis restart broke, and bounds an unreachable Redis at two timeouts, which
    a probe can wait for (redis-py's default is three retries with back-off).
    """
    return Redis.from_url(
        url,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1),
    )


def _channel_layer_state() -> str:
    if not settings.REDIS_URL:
        return "ok"  # the in-memory layer of single-process dev mode
    try:
        _redis_client(settings.REDIS_URL).ping()
    except RedisError as exc:
        return _unreachable(exc)
    return "ok"
