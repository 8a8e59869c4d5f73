"""Two real web processes draw on one per-address connect budget (counted in Redis)."""

import uuid
from collections.abc import Iterator

import pytest

from tests.live import LiveServer, uvicorn_server
from tests.streaming import live_support
from tests.streaming.conftest import Committed, Tenant
from tests.streaming.live_support import expect_refused, recv_json, ws_connect

pytestmark = [pytest.mark.asyncio]

CONNECTS = 4
db = live_support.db


@pytest.fixture
def two_web_processes(db: None, committed: Committed) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two uvicorn processes with a low connect limit, counting in a Redis namespace of their own (every
    other live test of the run connects from 127.0.0.1 too)."""
    env = {"RATE_LIMIT_WS_CONNECTS": f"{CONNECTS} per hour", "TEST_REDIS_NAMESPACE": f"rl{uuid.uuid4().hex[:8]}"}
    with uvicorn_server(**env) as one, uvicorn_server(**env) as two:
        yield one, two


async def snapshot_then_close(server: LiveServer, tenant: Tenant) -> str:
    async with ws_connect(server, tenant.host, tenant.session, "symbols=AAPL") as ws:
        return str((await recv_json(ws, within=10))["type"])


async def test_the_connect_limit_is_shared_by_every_web_process(
    committed: Committed, two_web_processes: tuple[LiveServer, LiveServer]
) -> None:
    one, two = two_web_processes
    tenant = await committed.tenant("pro")

    # Two connects on each process: each saw fewer than the limit, together they used it.
    accepted = [await snapshot_then_close(server, tenant) for server in (one, two, one, two)]

    assert accepted == ["snapshot"] * CONNECTS
    for server in (one, two):
        error = await expect_refused(server, tenant.host, tenant.session, "symbols=AAPL", 4429, "rate_limited")
        assert error["retry_after"] > 0
