"""End to end through real processes: uvicorn serving config.asgi, `manage.py run_feed`, a websockets client."""

import asyncio
import contextlib
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from redis import asyncio as aioredis
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from billing.models import Plan
from billing.services import plan_save
from tests.live import (
    FeedProcess,
    LiveServer,
    feed_processes,
    leader_among,
    record_figure,
    stream_environment,
    stream_key,
    uvicorn_server,
)
from tests.streaming import live_support
from tests.streaming.conftest import Committed, Tenant
from tests.streaming.live_support import (
    Tally,
    directory_symbols,
    expect_refused,
    now_ms,
    quote_problems,
    read_for,
    recv_json,
    recv_until,
    ws_connect,
)

pytestmark = pytest.mark.live

# The live fixtures (pytest finds fixtures among a module's globals).
db, feed, web, web_other = live_support.db, live_support.feed, live_support.web, live_support.web_other

LEASE_SECONDS = 3.0  # tests.live.LIVE_STREAM_SETTINGS


async def snapshot_of(ws: ClientConnection) -> dict[str, Any]:
    message = await recv_json(ws, within=10)
    assert message["type"] == "snapshot", message
    return message


async def test_snapshot_first_then_fresh_updates(committed: Committed, feed: FeedProcess, web: LiveServer) -> None:
    tenant = await committed.tenant("pro")
    async with ws_connect(web, tenant.host, tenant.session, "symbols=aapl,MSFT") as first:
        snapshot = await snapshot_of(first)
        assert snapshot["delayed"] is False
        assert snapshot["limits"] == {"max_symbols": 50, "symbols": 2, "max_streams": 10}

        tally = await read_for(first, 10, Tally(), until=lambda t: t.symbols() == {"AAPL", "MSFT"})
        assert tally.symbols() == {"AAPL", "MSFT"}, "both symbols stream within 10 s"
        assert tally.messages == []
        problems = [p for received, q in tally.quotes for p in quote_problems(q, received, max_age_ms=3000)]
        assert problems == []

        # Both symbols are in the last-quote cache now: a second connection's snapshot carries them, fresh.
        async with ws_connect(web, tenant.host, tenant.session, "symbols=MSFT,AAPL") as second:
            snapshot = await snapshot_of(second)
            received = now_ms()
            assert [q["symbol"] for q in snapshot["quotes"]] == ["MSFT", "AAPL"]
            assert [p for q in snapshot["quotes"] for p in quote_problems(q, received, max_age_ms=3000)] == []
            assert (await recv_until(second, "quotes"))["quotes"]


async def test_the_stream_limit_holds_across_two_web_processes(
    committed: Committed, web: LiveServer, web_other: LiveServer
) -> None:
    tenant = await committed.tenant(await committed.plan(max_streams=2))
    async with (
        ws_connect(web, tenant.host, tenant.session, "symbols=AAPL") as one,
        ws_connect(web_other, tenant.host, tenant.session, "symbols=AAPL") as two,
    ):
        await snapshot_of(one)
        await snapshot_of(two)
        for server in (web, web_other):
            error = await expect_refused(server, tenant.host, tenant.session, "symbols=AAPL", 4429, "stream_limit")
            assert error["limits"] == {"max_streams": 2}


async def try_stream(server: LiveServer, tenant: Tenant) -> bool:
    """Whether a connection is accepted now (True: it got its snapshot), closing it either way."""
    async with ws_connect(server, tenant.host, tenant.session, "symbols=AAPL") as ws:
        first = await recv_json(ws, within=10)
        if first["type"] == "snapshot":
            return True
        assert (first["type"], first["code"]) == ("error", "stream_limit"), first
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 4429
        return False


async def test_a_killed_web_process_stops_counting_within_the_lease(
    committed: Committed, web_other: LiveServer
) -> None:
    tenant = await committed.tenant(await committed.plan(max_streams=2))
    with uvicorn_server(**stream_environment()) as doomed:
        streams = [await ws_connect(doomed, tenant.host, tenant.session, "symbols=AAPL") for _ in range(2)]
        try:
            for ws in streams:
                await snapshot_of(ws)
            doomed.process.kill()  # SIGKILL: no disconnect runs, the leases stay until they expire
            await asyncio.to_thread(doomed.process.wait, 10)
            killed = time.monotonic()
            assert not await try_stream(web_other, tenant), "the dead process's streams still count at first"

            accepted_after = None
            while time.monotonic() - killed < 15:
                if await try_stream(web_other, tenant):
                    accepted_after = time.monotonic() - killed
                    break
                await asyncio.sleep(0.5)
        finally:
            for ws in streams:
                ws.transport.abort()
    record_figure("stream lease lapse", f"a stream accepted {accepted_after} s after SIGKILL (lease {LEASE_SECONDS} s)")
    assert accepted_after is not None, "the killed process's streams still counted 15 s later"
    assert accepted_after <= LEASE_SECONDS + 1.5


async def test_the_standby_feed_takes_over_when_the_leader_is_killed(committed: Committed, web: LiveServer) -> None:
    tenant = await committed.tenant("pro")
    with feed_processes(2, **stream_environment()) as feeds:
        leader = await asyncio.to_thread(leader_among, feeds)
        standby = next(feed for feed in feeds if feed is not leader)
        async with aioredis.from_url(settings.REDIS_URL) as redis:
            assert (await redis.get(stream_key("feed:leader"))) == leader.holder.encode()
        assert not standby.has_led()

        async with ws_connect(web, tenant.host, tenant.session, "symbols=AAPL,MSFT,NVDA") as ws:
            await snapshot_of(ws)
            await recv_until(ws, "quotes")
            leader.process.kill()
            killed, killed_ms = time.monotonic(), now_ms()
            # A quote stamped after the kill can only come from the new leader.
            tally = await read_for(ws, 15, Tally(), until=lambda t: any(q["ts"] > killed_ms for _, q in t.quotes))
            gap = time.monotonic() - killed
        assert any(q["ts"] > killed_ms for _, q in tally.quotes), "no quotes 15 s after the leader was killed"
        record_figure("feed failover", f"quotes resumed {gap:.2f} s after the leader was killed")
        assert standby.has_led()
        assert gap < 5


async def plan_update(plan: Plan, **fields: Any) -> None:
    """An admin edit: billing saves the plan and tells open connections after the commit."""

    def save() -> None:
        for name, value in fields.items():
            setattr(plan, name, value)
        plan_save(plan=plan, changed=fields)

    await sync_to_async(save)()


async def read_until_message(ws: ClientConnection, kind: str, tally: Tally, deadline: float) -> dict[str, Any]:
    """Read into `tally` until a message of type `kind` arrives, by `deadline` (monotonic)."""
    await read_for(ws, deadline - time.monotonic(), tally, until=lambda t: any(m["type"] == kind for m in t.messages))
    found = [m for m in tally.messages if m["type"] == kind]
    assert found, f"no {kind} message in time; got {tally.messages}"
    return found[0]


async def test_a_plan_edit_trims_and_then_raises_a_live_connection(
    committed: Committed, feed: FeedProcess, web: LiveServer
) -> None:
    plan = await committed.plan(max_symbols_per_stream=5, max_streams=2)
    tenant = await committed.tenant(plan)
    async with ws_connect(web, tenant.host, tenant.session, "symbols=AAPL,MSFT,NVDA,AMZN") as ws:
        assert (await snapshot_of(ws))["limits"]["max_symbols"] == 5
        await recv_until(ws, "quotes")

        edited = time.monotonic()
        await plan_update(plan, max_symbols_per_stream=2)
        before = Tally()
        limits = await read_until_message(ws, "limits", before, deadline=edited + 2)
        unsubscribed = await read_until_message(ws, "unsubscribed", before, deadline=edited + 2)
        record_figure("plan edit", f"the trim reached the client {time.monotonic() - edited:.3f} s after the save")
        assert (limits["max_symbols"], limits["symbols"], limits["max_streams"]) == (2, 2, 2)
        assert (unsubscribed["symbols"], unsubscribed["reason"]) == (["NVDA", "AMZN"], "plan_limit")
        assert "2 symbols" in unsubscribed["message"]

        after = await read_for(ws, 10, Tally(), until=lambda t: t.symbols() == {"AAPL", "MSFT"} and t.frames >= 20)
        assert after.symbols() == {"AAPL", "MSFT"}, "only the first two symbols stream after the trim"
        assert after.messages == []

        raised = time.monotonic()
        await plan_update(plan, max_symbols_per_stream=10)
        tally = Tally()
        limits = await read_until_message(ws, "limits", tally, deadline=raised + 2)
        assert (limits["max_symbols"], limits["symbols"]) == (10, 2)
        await read_for(ws, 1.5, tally)  # anything the raise wrongly sends next arrives with it
        assert [m["type"] for m in tally.messages] == ["limits"]
        assert tally.symbols() <= {"AAPL", "MSFT"}


async def uncached_symbols(delay_minutes: int, count: int) -> list[str]:
    """Directory symbols with no quote in the delay's last-quote cache (so the snapshot starts empty)."""
    candidates = await directory_symbols()
    async with aioredis.from_url(settings.REDIS_URL) as redis:
        cached = await redis.hmget(stream_key(f"last:{delay_minutes}"), candidates)
    free = [symbol for symbol, quote in zip(candidates, cached, strict=True) if quote is None]
    assert len(free) >= count, "the delayed cache holds every directory symbol"
    return free[:count]


async def test_a_delayed_plan_lags_by_its_delay_while_realtime_does_not(
    committed: Committed, feed: FeedProcess, web: LiveServer
) -> None:
    delayed = await committed.tenant(await committed.plan(realtime=False, delay_minutes=1))
    realtime = await committed.tenant("pro")
    symbols = await uncached_symbols(1, 2)
    query = "symbols=" + ",".join(symbols)
    async with ws_connect(web, delayed.host, delayed.session, query) as late:
        snapshot = await snapshot_of(late)
        connected_ms = now_ms()
        assert (snapshot["delayed"], snapshot["delay_minutes"], snapshot["quotes"]) == (True, 1, [])
        # The simulated feed has history: no "delayed data starts at", the quotes of a "minute" ago come at once.
        assert "pending" not in snapshot

        async with ws_connect(web, realtime.host, realtime.session, query) as live:
            assert (await snapshot_of(live))["delayed"] is False
            enough = 4  # delayed quotes are sampled once a second per symbol

            def done(t: Tally) -> bool:
                return len(t.quotes) >= enough

            late_tally, live_tally = await asyncio.gather(
                read_for(late, 15, Tally(), until=done), read_for(live, 8, Tally(), until=lambda t: t.frames >= 100)
            )
    first_delayed_after = (late_tally.quotes[0][0] - connected_ms) / 1000 if late_tally.quotes else None
    record_figure(
        "delayed plan",
        f"first delayed quote {first_delayed_after} s after connect, delayed ages "
        f"{sorted(late_tally.ages())} ms, realtime max age {max(live_tally.ages(), default=None)} ms",
    )
    assert len(late_tally.quotes) >= enough, "delayed quotes arrive"
    assert first_delayed_after is not None
    assert first_delayed_after < 1.5, "delayed quotes start at once"
    assert late_tally.symbols() <= set(symbols)
    assert all(1900 <= age < 10_000 for age in late_tally.ages()), late_tally.ages()
    # The realtime organisation shares the web process with the delayed one; its stream must not suffer.
    realtime_report = f"{live_tally.frames} realtime frames in 8 s, quote ages {sorted(live_tally.ages())} ms"
    assert live_tally.frames >= 20, realtime_report
    assert all(age < 1000 for age in live_tally.ages()), realtime_report
