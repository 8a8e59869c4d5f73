"""Per-address rate limits (websocket connects, widget tokens), shared by every web process through Redis.

Built on `limits` (the library django-ratelimit and Flask-Limiter build on): a moving window per
client address, counted in Redis (REDIS_URL) so that every web process draws on one budget, or in
memory in a process without Redis (dev mode). The address is the one allauth's rate limits use
(`client_address`), for HTTP requests and websocket scopes alike.

Redis away: each process falls back to counting in its own memory, with the same limits, and tries
Redis again after `REDIS_RETRY_SECONDS`. Neither extreme: failing open would lift every limit for as
long as Redis is down, failing closed would refuse every viewer for a fault that is not theirs.
"""

import asyncio
import functools
import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import limits
import limits.aio.storage
import limits.aio.strategies
import limits.storage
import limits.strategies
import redis
import redis.asyncio
from allauth.account.adapter import get_adapter
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest
from limits.errors import StorageError
from prometheus_client import Counter
from redis.exceptions import RedisError

from .metrics import REGISTRY

logger = logging.getLogger(__name__)

LimitName = Literal["ws_connect", "widget_token"]
SETTING_OF: dict[LimitName, str] = {"ws_connect": "RATE_LIMIT_WS_CONNECTS", "widget_token": "RATE_LIMIT_WIDGET_TOKENS"}
OFF = "off"  # a limit switched off (config/settings/base.py env_rate_limit)
UNKNOWN_ADDRESS = "unknown"  # every request whose address cannot be told shares this one budget
# Seconds a process counts in memory after Redis failed, before it tries Redis again: an outage costs
# one timeout per process every few seconds, not one per connect.
REDIS_RETRY_SECONDS = 5.0
# A healthy Redis answers in a millisecond; a stalled one must not hold connects for long.
REDIS_TIMEOUT_SECONDS = 1.0

RATE_LIMITED = Counter(
    "tickerdeck_rate_limited",
    "Requests and websocket connects refused by a per-address limit, by limit.",
    ["limit"],
    registry=REGISTRY,
)
LOCAL_FALLBACKS = Counter(
    "tickerdeck_rate_limit_local_fallbacks",
    "Times this process found Redis unreachable and counted per-address limits in its own memory.",
    registry=REGISTRY,
)


@functools.cache
def _parsed(value: str) -> limits.RateLimitItem | None:
    return None if value == OFF else limits.parse(value)  # validated when settings load (env_rate_limit)


def rate_limit_item(name: LimitName) -> limits.RateLimitItem | None:
    """The limit in force now (read from settings at each call, so tests can override it)."""
    return _parsed(str(getattr(settings, SETTING_OF[name])))


def client_address(request: HttpRequest) -> str | None:
    """The client's address as allauth's rate limits see it: REMOTE_ADDR, or the declared proxy's
    header (TRUSTED_PROXY_COUNT / TRUSTED_CLIENT_IP_HEADER); None when it cannot be told."""
    try:
        return str(get_adapter(request).get_client_ip(request))
    except (
        PermissionDenied,
        ImproperlyConfigured,
    ):  # no declared header, or fewer X-Forwarded-For entries than proxies
        return None


def scope_request(scope: dict[str, Any]) -> HttpRequest:
    """A bare HttpRequest carrying a websocket scope's peer address and headers, as Django's ASGI handler
    would build them, so that one rule (`client_address`) serves both."""
    request = HttpRequest()
    if client := scope.get("client"):
        request.META["REMOTE_ADDR"] = str(client[0])
    for raw_name, raw_value in scope.get("headers", ()):
        key = "HTTP_" + bytes(raw_name).decode("latin-1").upper().replace("-", "_")
        value = bytes(raw_value).decode("latin-1")
        request.META[key] = f"{request.META[key]},{value}" if key in request.META else value
    return request


def address_key(address: str | None) -> str:
    """What the limit counts against: an IPv4 address, or an IPv6 address's /64 (one subscriber's
    network: a single host can take any of its 2^64 addresses)."""
    if address is None:
        return UNKNOWN_ADDRESS
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return UNKNOWN_ADDRESS
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # whole seconds until the window has room again (refusals only)


ALLOWED = Verdict(allowed=True)


def _verdict(reset_time: float) -> Verdict:
    return Verdict(allowed=False, retry_after=max(1, math.ceil(reset_time - time.time())))


class _Fallback:
    """When to use Redis, and when this process's memory instead (Redis failed lately)."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.redis_down_until = 0.0

    def use_redis(self) -> bool:
        return bool(self.redis_url) and time.monotonic() >= self.redis_down_until

    def redis_failed(self, exc: Exception) -> None:
        self.redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
        LOCAL_FALLBACKS.inc()
        logger.warning(
            "Redis is unreachable for the per-address rate limits (%s): this process counts them in its own "
            "memory for %.0f s, then tries Redis again.", exc, REDIS_RETRY_SECONDS,
        )  # fmt: skip

    def storage_options(self, pool_class: Any) -> dict[str, Any]:
        """`limits`' Redis storage on a pool that redis-py makes from REDIS_URL itself (any form it reads:
        redis://, rediss://, unix://), with short timeouts."""
        pool = pool_class.from_url(
            self.redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        return {
            "connection_pool": pool,
            "wrap_exceptions": True,
            "key_prefix": f"{settings.STREAM_REDIS_PREFIX}ratelimit",
        }


class AddressLimiter(_Fallback):
    """For synchronous code (views): a blocking Redis client, thread-safe."""

    def __init__(self, redis_url: str) -> None:
        super().__init__(redis_url)
        self.local = limits.strategies.MovingWindowRateLimiter(limits.storage.MemoryStorage())
        self.shared = (
            limits.strategies.MovingWindowRateLimiter(
                limits.storage.RedisStorage("redis://", **self.storage_options(redis.ConnectionPool))
            )
            if redis_url
            else None
        )

    def hit(self, name: LimitName, address: str | None) -> Verdict:
        item = rate_limit_item(name)
        if item is None:
            return ALLOWED
        if self.shared is not None and self.use_redis():
            try:
                return self._hit(self.shared, item, name, address)
            except (StorageError, RedisError) as exc:
                self.redis_failed(exc)
        return self._hit(self.local, item, name, address)

    def _hit(
        self, limiter: limits.strategies.RateLimiter, item: limits.RateLimitItem, name: LimitName, address: str | None
    ) -> Verdict:
        key = address_key(address)
        if limiter.hit(item, name, key):
            return ALLOWED
        RATE_LIMITED.labels(name).inc()
        return _verdict(limiter.get_window_stats(item, name, key).reset_time)


class AsyncAddressLimiter(_Fallback):
    """For the event loop (the websocket stack): an asyncio Redis client of this loop."""

    def __init__(self, redis_url: str) -> None:
        super().__init__(redis_url)
        self.local = limits.aio.strategies.MovingWindowRateLimiter(limits.aio.storage.MemoryStorage())
        self.shared = (
            limits.aio.strategies.MovingWindowRateLimiter(
                limits.aio.storage.RedisStorage(
                    "async+redis://", implementation="redispy", **self.storage_options(redis.asyncio.ConnectionPool)
                )
            )
            if redis_url
            else None
        )

    async def hit(self, name: LimitName, address: str | None) -> Verdict:
        item = rate_limit_item(name)
        if item is None:
            return ALLOWED
        if self.shared is not None and self.use_redis():
            try:
                return await self._hit(self.shared, item, name, address)
            except (StorageError, RedisError, OSError) as exc:
                self.redis_failed(exc)
        return await self._hit(self.local, item, name, address)

    async def _hit(
        self,
        limiter: limits.aio.strategies.RateLimiter,
        item: limits.RateLimitItem,
        name: LimitName,
        address: str | None,
    ) -> Verdict:
        key = address_key(address)
        if await limiter.hit(item, name, key):
            return ALLOWED
        RATE_LIMITED.labels(name).inc()
        return _verdict((await limiter.get_window_stats(item, name, key)).reset_time)


_async_limiters: dict[asyncio.AbstractEventLoop, AsyncAddressLimiter] = {}


@functools.cache
def _sync_limiter(redis_url: str) -> AddressLimiter:
    return AddressLimiter(redis_url)


def address_limiter() -> AddressLimiter:
    """The process's limiter for synchronous code."""
    return _sync_limiter(settings.REDIS_URL)


def address_limiter_async() -> AsyncAddressLimiter:
    """The limiter of the running event loop (asyncio Redis clients belong to one loop)."""
    loop = asyncio.get_running_loop()
    limiter = _async_limiters.get(loop)
    if limiter is None or limiter.redis_url != settings.REDIS_URL:
        limiter = _async_limiters[loop] = AsyncAddressLimiter(settings.REDIS_URL)
    return limiter
