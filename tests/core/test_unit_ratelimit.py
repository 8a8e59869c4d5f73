"""The per-address limiter (core/ratelimit.py): addresses, windows, Redis shared by processes, Redis away."""

import logging
import time
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings
from redis.exceptions import RedisError

from config.settings.base import env_rate_limit
from core.ratelimit import (
    UNKNOWN_ADDRESS,
    AddressLimiter,
    AsyncAddressLimiter,
    address_key,
    client_address,
    scope_request,
)
from tests.core.ratelimit_support import fresh_address, unreachable_redis

pytestmark = pytest.mark.usefixtures("low_limits")

CONNECTS = 3
TOKENS = 2


@pytest.fixture
def low_limits(settings: Any) -> None:
    settings.RATE_LIMIT_WS_CONNECTS = f"{CONNECTS} per hour"
    settings.RATE_LIMIT_WIDGET_TOKENS = f"{TOKENS} per hour"


def verdicts(limiter: AddressLimiter, address: str, count: int) -> list[bool]:
    return [limiter.hit("widget_token", address).allowed for _ in range(count)]


# -- which address counts ---------------------------------------------------------------------------
def test_ipv4_counts_as_itself_and_ipv6_by_its_64_network() -> None:
    assert address_key("203.0.113.7") == "203.0.113.7"
    assert address_key("::ffff:203.0.113.7") == "203.0.113.7"  # IPv4 on a dual-stack socket
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key(None) == address_key("not an address") == UNKNOWN_ADDRESS


def test_a_websocket_scope_gives_the_peer_address_without_a_declared_proxy() -> None:
    scope = {"client": ("198.51.100.4", 50123), "headers": [(b"x-forwarded-for", b"203.0.113.9")]}
    assert client_address(scope_request(scope)) == "198.51.100.4"


@override_settings(ALLAUTH_TRUSTED_PROXY_COUNT=1)
def test_a_websocket_scope_gives_the_address_a_declared_proxy_appended() -> None:
    scope = {"client": ("10.0.0.2", 50123), "headers": [(b"x-forwarded-for", b"198.51.100.66, 203.0.113.9")]}
    assert client_address(scope_request(scope)) == "203.0.113.9"


@override_settings(ALLAUTH_TRUSTED_CLIENT_IP_HEADER="X-Real-IP")
def test_a_declared_client_ip_header_is_the_only_source_and_its_absence_is_unknown() -> None:
    with_header = {"client": ("10.0.0.2", 1), "headers": [(b"x-real-ip", b"203.0.113.5")]}
    without = {"client": ("10.0.0.2", 1), "headers": [(b"x-forwarded-for", b"203.0.113.6")]}
    assert client_address(scope_request(with_header)) == "203.0.113.5"
    assert client_address(scope_request(without)) is None  # then it shares the "unknown" budget


@override_settings(ALLAUTH_TRUSTED_PROXY_COUNT=2)
def test_fewer_forwarded_entries_than_declared_proxies_is_an_unknown_address_not_an_error() -> None:
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert client_address(request) is None


def test_http_and_websocket_give_the_same_address_for_the_same_connection() -> None:
    request = RequestFactory().get("/", REMOTE_ADDR="198.51.100.8", HTTP_X_FORWARDED_FOR="203.0.113.9")
    scope = {"client": ("198.51.100.8", 1), "headers": [(b"x-forwarded-for", b"203.0.113.9")]}
    assert client_address(request) == client_address(scope_request(scope)) == "198.51.100.8"
    with override_settings(ALLAUTH_TRUSTED_PROXY_COUNT=1):
        assert client_address(request) == client_address(scope_request(scope)) == "203.0.113.9"


# -- the settings ------------------------------------------------------------------------------------
def test_a_limit_from_the_environment_is_checked_when_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT_X", " 40  per 10 seconds ")
    assert env_rate_limit("RATE_LIMIT_X", default="1/second") == "40 per 10 seconds"
    monkeypatch.setenv("RATE_LIMIT_X", "OFF")
    assert env_rate_limit("RATE_LIMIT_X", default="1/second") == "off"
    monkeypatch.setenv("RATE_LIMIT_X", "lots")
    with pytest.raises(ImproperlyConfigured, match="RATE_LIMIT_X='lots' is not a rate limit"):
        env_rate_limit("RATE_LIMIT_X", default="1/second")


# -- counting ----------------------------------------------------------------------------------------
def test_in_memory_the_limit_refuses_past_its_count_with_a_retry_after() -> None:
    limiter, address = AddressLimiter(""), fresh_address()
    assert verdicts(limiter, address, TOKENS) == [True] * TOKENS
    refused = limiter.hit("widget_token", address)
    assert not refused.allowed
    assert 3500 < refused.retry_after <= 3600  # the oldest hit leaves the hour's window then
    assert limiter.hit("widget_token", fresh_address()).allowed  # another address has its own budget


def test_each_limit_has_its_own_budget(settings: Any) -> None:
    limiter, address = AddressLimiter(""), fresh_address()
    assert verdicts(limiter, address, TOKENS + 1) == [True] * TOKENS + [False]
    assert limiter.hit("ws_connect", address).allowed


def test_off_lifts_a_limit(settings: Any) -> None:
    settings.RATE_LIMIT_WIDGET_TOKENS = "off"
    limiter, address = AddressLimiter(""), fresh_address()
    assert verdicts(limiter, address, 50) == [True] * 50


def test_two_processes_share_one_budget_in_redis(settings: Any) -> None:
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    one, two, address = AddressLimiter(settings.REDIS_URL), AddressLimiter(settings.REDIS_URL), fresh_address()
    assert one.hit("widget_token", address).allowed
    assert two.hit("widget_token", address).allowed
    assert not one.hit("widget_token", address).allowed
    assert not two.hit("widget_token", address).allowed


async def test_the_async_limiter_shares_the_sync_limiters_counts_in_redis(settings: Any) -> None:
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    address = fresh_address()
    assert AddressLimiter(settings.REDIS_URL).hit("ws_connect", address).allowed
    limiter = AsyncAddressLimiter(settings.REDIS_URL)
    assert [(await limiter.hit("ws_connect", address)).allowed for _ in range(CONNECTS)] == [True, True, False]


# -- Redis away --------------------------------------------------------------------------------------
def test_with_redis_away_each_process_still_limits_in_memory_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    limiter, address = AddressLimiter(unreachable_redis()), fresh_address()
    with caplog.at_level(logging.WARNING, logger="core.ratelimit"):
        answers = verdicts(limiter, address, TOKENS + 1)
    assert answers == [True] * TOKENS + [False]  # neither open to all nor closed to all
    warnings = [r for r in caplog.records if "Redis is unreachable" in r.getMessage()]
    assert len(warnings) == 1  # one warning per outage and process, not one per request


def test_after_an_outage_the_limiter_goes_back_to_redis(settings: Any) -> None:
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    limiter, other, address = AddressLimiter(settings.REDIS_URL), AddressLimiter(settings.REDIS_URL), fresh_address()
    limiter.redis_failed(RedisError("connection refused"))
    assert not limiter.use_redis()
    assert verdicts(limiter, address, TOKENS) == [True] * TOKENS  # counted in this process's memory
    assert verdicts(other, address, TOKENS) == [True] * TOKENS  # Redis saw none of those
    limiter.redis_down_until = time.monotonic()  # REDIS_RETRY_SECONDS later
    assert not limiter.hit("widget_token", address).allowed  # back on Redis, where `other` used the budget


async def test_the_async_limiter_falls_back_to_memory_too(caplog: pytest.LogCaptureFixture) -> None:
    limiter, address = AsyncAddressLimiter(unreachable_redis()), fresh_address()
    with caplog.at_level(logging.WARNING, logger="core.ratelimit"):
        answers = [(await limiter.hit("ws_connect", address)).allowed for _ in range(CONNECTS + 1)]
    assert answers == [True] * CONNECTS + [False]
    assert any("Redis is unreachable" in r.getMessage() for r in caplog.records)
