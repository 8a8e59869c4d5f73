"""Liveness and readiness checks: the database and the channel layer."""

from django.conf import settings
from django.db import DatabaseError, connection
from redis import Redis
from redis.exceptions import RedisError

CHECK_TIMEOUT_SECONDS = 2


def readiness_checks() -> dict[str, str]:
    """Each dependency's state: "ok" or the reason it cannot be used."""
    return {"database": _database_state(), "channel_layer": _channel_layer_state()}


def _database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return f"unreachable: {exc.__class__.__name__}"
    return "ok"


def _channel_layer_state() -> str:
    if not settings.REDIS_URL:
        return "ok"  # the in-memory layer of single-process dev mode
    try:
        client = Redis.from_url(
            settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT_SECONDS, socket_connect_timeout=CHECK_TIMEOUT_SECONDS
        )
        with client:
            client.ping()
    except RedisError as exc:
        return f"unreachable: {exc.__class__.__name__}"
    return "ok"
