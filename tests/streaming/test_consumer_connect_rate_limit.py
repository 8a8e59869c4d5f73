"""The per-address connect limit through the whole ASGI application (RATE_LIMIT_WS_CONNECTS set low)."""

from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from streaming.metrics import STREAM_COUNTS
from tests.core.ratelimit_support import fresh_address
from tests.streaming.conftest import Committed, Tenant, expect_refusal, receive

pytestmark = [pytest.mark.asyncio]

CONNECTS = 3


@pytest.fixture
def low_connect_limit(settings: Any) -> None:
    settings.RATE_LIMIT_WS_CONNECTS = f"{CONNECTS} per hour"


def connect_from(address: str, host: str, *, session: str | None = None, **headers: str) -> WebsocketCommunicator:
    """A connection whose peer is `address`, as uvicorn puts it in scope["client"]."""

    async def from_address(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        return await application({**scope, "client": (address, 50123)}, receive, send)

    raw = [(b"host", host.encode())] + [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if session:
        raw.append((b"cookie", f"sessionid={session}".encode()))
    return WebsocketCommunicator(from_address, "/ws/stock-market/?symbols=AAPL", headers=raw)


async def streams(communicator: WebsocketCommunicator) -> bool:
    connected, _ = await communicator.connect()
    first = await receive(communicator)
    await communicator.disconnect()
    return connected and first["type"] == "snapshot"


@pytest.mark.usefixtures("low_connect_limit", "hub_cleanup")
async def test_past_the_limit_one_address_gets_4429_rate_limited_while_another_still_connects(
    committed: Committed,
) -> None:
    tenant: Tenant = await committed.tenant("pro")
    crowded, other = fresh_address(), fresh_address()
    refusals_before = STREAM_COUNTS.refusals[4429]

    for _ in range(CONNECTS):
        assert await streams(connect_from(crowded, tenant.host, session=tenant.session))
    error = await expect_refusal(connect_from(crowded, tenant.host, session=tenant.session), 4429, "rate_limited")

    assert 3500 < error["retry_after"] <= 3600
    assert f"{error['retry_after']} s" in error["message"]
    assert STREAM_COUNTS.refusals[4429] == refusals_before + 1
    assert await streams(connect_from(other, tenant.host, session=tenant.session))


@pytest.mark.usefixtures("low_connect_limit", "hub_cleanup")
async def test_every_attempt_counts_and_the_limit_is_checked_before_the_organisation_lookup(
    committed: Committed,
) -> None:
    """Refused attempts (here: a host with no organisation) use the budget too, and past it the answer is
    4429 before any database work: even for that unknown host."""
    address = fresh_address()
    for _ in range(CONNECTS):
        await expect_refusal(connect_from(address, "nobody.localhost"), 4404, "unknown_tenant")
    await expect_refusal(connect_from(address, "nobody.localhost"), 4429, "rate_limited")


@pytest.mark.usefixtures("low_connect_limit", "hub_cleanup")
async def test_a_forged_x_forwarded_for_buys_no_connects_without_a_declared_proxy(committed: Committed) -> None:
    address = fresh_address()
    for n in range(CONNECTS):
        forged = {"X-Forwarded-For": f"198.51.100.{n}"}
        await expect_refusal(connect_from(address, "nobody.localhost", **forged), 4404, "unknown_tenant")
    forged = {"X-Forwarded-For": "198.51.100.200"}
    await expect_refusal(connect_from(address, "nobody.localhost", **forged), 4429, "rate_limited")


@pytest.mark.usefixtures("low_connect_limit", "hub_cleanup")
async def test_behind_a_declared_proxy_each_forwarded_address_has_its_own_budget(
    committed: Committed, settings: Any
) -> None:
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    proxy, client, neighbour = "10.0.0.2", fresh_address(), fresh_address()
    for _ in range(CONNECTS):
        await expect_refusal(
            connect_from(proxy, "nobody.localhost", **{"X-Forwarded-For": client}), 4404, "unknown_tenant"
        )
    await expect_refusal(connect_from(proxy, "nobody.localhost", **{"X-Forwarded-For": client}), 4429, "rate_limited")
    await expect_refusal(
        connect_from(proxy, "nobody.localhost", **{"X-Forwarded-For": neighbour}), 4404, "unknown_tenant"
    )
