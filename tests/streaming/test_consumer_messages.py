"""After connect: subscribe / unsubscribe within the plan, ping, bad frames, plan changes, watchlists."""

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers

from billing.models import Plan
from billing.services import organisation_billing_save, plan_save
from streaming.feed import Feed
from streaming.groups import control_group
from streaming.providers import SimulatedProvider
from streaming.state import stream_state
from symbols.models import Symbol
from tenants.db import activate_public_schema, activate_schema
from tenants.services.organisations import organisation_rename
from tests.streaming.conftest import (
    Committed,
    Tenant,
    connect,
    expect_refusal,
    receive,
    receive_until,
    remove_members_but_the_owner,
)
from watchlists.models import Watchlist
from watchlists.services import watchlist_add_symbols, watchlist_remove_symbol

pytestmark = [pytest.mark.asyncio]


async def streaming(tenant: Tenant, query: str = "symbols=AAPL,MSFT") -> Any:
    ws = connect(tenant.host, session=tenant.session, query=query)
    connected, _ = await ws.connect()
    assert connected
    assert (await receive(ws))["type"] == "snapshot"
    return ws


async def test_ping_gets_pong(committed: Committed, hub_cleanup: None) -> None:
    ws = await streaming(await committed.tenant("pro"))
    await ws.send_to(text_data='{"action":"ping"}')
    assert (await receive_until(ws, "pong"))["type"] == "pong"
    await ws.disconnect()


async def test_subscribe_accepts_what_fits_and_rejects_the_rest_with_reasons(committed: Committed, feed: Feed) -> None:
    tenant = await committed.tenant("free")  # 5 symbols per stream
    ws = await streaming(tenant, "symbols=AAPL,MSFT")

    await ws.send_json_to({"action": "subscribe", "symbols": ["amzn", "MSFT", "NOPEXX", "GOOGL", "NVDA", "TSLA"]})

    reply = await receive_until(ws, "subscribed")
    assert reply["symbols"] == ["AMZN", "GOOGL", "NVDA"]
    assert reply["rejected"] == [
        {"symbol": "NOPEXX", "reason": "unknown_symbol"},
        {"symbol": "TSLA", "reason": "symbol_limit"},
    ]
    await ws.disconnect()


async def test_unsubscribe_stops_a_symbols_quotes(committed: Committed, feed: Feed) -> None:
    tenant = await committed.tenant("pro")
    ws = await streaming(tenant, "symbols=AAPL,MSFT")

    await ws.send_json_to({"action": "unsubscribe", "symbols": ["msft", "NOTMINE"]})

    reply = await receive_until(ws, "unsubscribed")
    assert reply == {"type": "unsubscribed", "symbols": ["MSFT"], "reason": "client"}
    symbols_after: set[str] = set()
    for _ in range(10):
        symbols_after |= {q["symbol"] for q in (await receive_until(ws, "quotes"))["quotes"]}
    assert symbols_after == {"AAPL"}
    await ws.disconnect()


@pytest.mark.parametrize(
    ("frame", "hint"),
    [
        ("not json", "not valid JSON"),
        ("[1,2]", "JSON object"),
        ('{"action":"buy"}', "Unknown action"),
        ('{"action":"subscribe"}', "non-empty list of symbols"),
        ('{"action":"subscribe","symbols":"AAPL"}', "non-empty list of symbols"),
    ],
)
async def test_a_bad_frame_gets_bad_request_and_the_connection_stays_up(
    committed: Committed, hub_cleanup: None, frame: str, hint: str
) -> None:
    ws = await streaming(await committed.tenant("pro"))

    await ws.send_to(text_data=frame)

    error = await receive_until(ws, "error")
    assert error["code"] == "bad_request"
    assert hint in error["message"]
    await ws.send_to(text_data='{"action":"ping"}')
    assert (await receive_until(ws, "pong"))["type"] == "pong"
    await ws.disconnect()


async def test_a_client_that_keeps_sending_garbage_is_closed_with_4400(committed: Committed, hub_cleanup: None) -> None:
    ws = await streaming(await committed.tenant("pro"))

    for _ in range(6):
        await ws.send_to(text_data="garbage")

    codes = []
    while True:
        output = await ws.receive_output(5)
        if output["type"] == "websocket.close":
            break
        codes.append(orjson.loads(output["text"]).get("code"))
    assert output["code"] == 4400
    assert codes.count("bad_request") >= 5


async def test_a_binary_frame_is_a_bad_request(committed: Committed, hub_cleanup: None) -> None:
    ws = await streaming(await committed.tenant("pro"))
    await ws.send_to(bytes_data=b"\x00\x01")
    assert (await receive_until(ws, "error"))["code"] == "bad_request"
    await ws.disconnect()


async def test_a_plan_edit_trims_open_connections_within_2_seconds(committed: Committed, feed: Feed) -> None:
    plan = await committed.plan(max_symbols_per_stream=4, max_streams=5)
    tenant = await committed.tenant(plan)
    ws = await streaming(tenant, "symbols=AAPL,MSFT,AMZN,GOOGL")

    plan.max_symbols_per_stream = 2
    await sync_to_async(plan_save)(plan=plan, changed=["max_symbols_per_stream"])

    limits = await receive_until(ws, "limits", within=2)
    assert limits["max_symbols"] == 2
    assert limits["symbols"] == 2
    dropped = await receive_until(ws, "unsubscribed", within=2)
    assert dropped["symbols"] == ["AMZN", "GOOGL"]
    assert dropped["reason"] == "plan_limit"
    assert "2 symbols per stream" in dropped["message"]
    seen: set[str] = set()
    for _ in range(10):
        seen |= {q["symbol"] for q in (await receive_until(ws, "quotes"))["quotes"]}
    assert seen <= {"AAPL", "MSFT"}

    plan.max_symbols_per_stream = 10
    await sync_to_async(plan_save)(plan=plan, changed=["max_symbols_per_stream"])
    raised = await receive_until(ws, "limits", within=2)
    assert raised["max_symbols"] == 10
    await ws.disconnect()


async def test_changing_an_organisations_plan_applies_its_limits(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    ws = await streaming(tenant, "symbols=AAPL,MSFT,AMZN,GOOGL,NVDA,TSLA")

    def downgrade() -> None:
        tenant.organisation.plan = Plan.objects.get(slug="free")
        organisation_billing_save(organisation=tenant.organisation, changed=["plan"])

    await sync_to_async(downgrade)()

    limits = await receive_until(ws, "limits", within=2)
    assert (limits["max_symbols"], limits["delayed"], limits["delay_minutes"]) == (5, True, 15)
    assert (await receive_until(ws, "unsubscribed", within=2))["symbols"] == ["TSLA"]
    await ws.disconnect()


async def test_renaming_an_organisation_sends_no_limits_message(committed: Committed, hub_cleanup: None) -> None:
    """Only a change of plan or standing reaches open connections; a rename is not one."""
    tenant = await committed.tenant("pro")
    ws = await streaming(tenant)

    def rename() -> None:
        owner = tenant.organisation.memberships.get(user=tenant.owner)
        organisation_rename(actor=owner, name="Renamed")

    await sync_to_async(rename)()
    await ws.send_to(text_data='{"action":"ping"}')
    messages = []
    while (message := await receive(ws, within=2))["type"] != "pong":
        messages.append(message["type"])
    assert await ws.receive_nothing(1.5)
    assert "limits" not in messages
    await ws.disconnect()


async def test_a_cancelled_subscription_closes_open_streams_with_4402(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    ws = await streaming(tenant)

    def cancel() -> None:
        tenant.organisation.subscription_status = "canceled"
        organisation_billing_save(organisation=tenant.organisation, changed=["subscription_status"])

    await sync_to_async(cancel)()

    error = await receive_until(ws, "error", within=2)
    assert error["code"] == "payment_required"
    assert await ws.receive_output(2) == {"type": "websocket.close", "code": 4402}


def make_watchlist(schema: str, symbols: list[str], name: str = "Tech") -> int:
    activate_schema(schema)
    try:
        return int(Watchlist.objects.create(name=name, symbols=symbols).pk)
    finally:
        activate_public_schema()


async def test_a_watchlist_gives_the_streams_symbols(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    watchlist_id = await sync_to_async(make_watchlist)(tenant.schema, ["NVDA", "AAPL"])

    ws = connect(tenant.host, session=tenant.session, query=f"watchlist={watchlist_id}")
    await ws.connect()
    snapshot = await receive(ws)
    assert snapshot["type"] == "snapshot"
    assert snapshot["limits"]["symbols"] == 2
    await ws.disconnect()


async def test_another_organisations_watchlist_id_is_not_found(committed: Committed, hub_cleanup: None) -> None:
    alpha, beta = await committed.tenant("pro"), await committed.tenant("pro")
    betas_watchlist = await sync_to_async(make_watchlist)(beta.schema, ["NVDA"])

    error = await expect_refusal(
        connect(alpha.host, session=alpha.session, query=f"watchlist={betas_watchlist}"), 4400, "bad_request"
    )
    assert f"no watchlist {betas_watchlist}" in error["message"]


async def test_a_delayed_plan_gets_quotes_of_its_delay_at_once(committed: Committed, feed: Feed) -> None:
    """The simulated provider has history: a Free plan sees 15-minute-old quotes from its first second."""
    tenant = await committed.tenant("free")  # 15 minutes delayed
    ws = connect(tenant.host, session=tenant.session, query="symbols=AAPL")
    await ws.connect()

    snapshot = await receive(ws)
    assert (snapshot["delayed"], snapshot["delay_minutes"]) == (True, 15)
    assert "pending" not in snapshot
    update = await receive_until(ws, "quotes", within=3)
    [quote] = update["quotes"]
    age_ms = time.time() * 1000 - quote["ts"]
    assert quote["symbol"] == "AAPL"
    assert 15 * 60_000 <= age_ms < 15 * 60_000 + 3000  # nothing realtime leaks to a delayed plan
    await ws.disconnect()


async def uncached_symbol(delay_minutes: int) -> str:
    """A directory symbol with no quote in the delay's last-quote cache (other tests fill it)."""
    candidates = await sync_to_async(
        lambda: list(Symbol.objects.order_by("-symbol").values_list("symbol", flat=True)[:500])
    )()
    cached = await stream_state().last_quotes(delay_minutes, candidates)
    return next(symbol for symbol in candidates if symbol not in cached)


class NoHistory(SimulatedProvider):
    """A provider that cannot tell the past (as a vendor stream without a history API)."""

    @property
    def has_history(self) -> bool:
        return False


@pytest.fixture
async def feed_without_history(hub_cleanup: None) -> AsyncIterator[Feed]:
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    running = Feed(NoHistory(ticks_per_second=400, seed=7), stream_state(), layer)
    task = asyncio.create_task(running.run())
    yield running
    running.stop()
    async with asyncio.timeout(10):
        await task


async def test_without_history_a_delayed_snapshot_says_when_delayed_data_starts(
    committed: Committed, feed_without_history: Feed
) -> None:
    tenant = await committed.tenant("free")  # 15 minutes delayed
    symbol = await uncached_symbol(15)
    for _ in range(100):  # until this test's leader has said it has no history (a previous one's status lapses)
        status = await stream_state().feed_status()
        if status is not None and status["history"] is False:
            break
        await asyncio.sleep(0.1)
    ws = connect(tenant.host, session=tenant.session, query=f"symbols={symbol}")
    await ws.connect()

    snapshot = await receive(ws)

    assert snapshot["delayed"] is True
    assert snapshot["quotes"] == []
    [pending] = snapshot["pending"]
    assert pending["symbol"] == symbol
    assert pending["available_at"] >= time.time() * 1000 + 14 * 60 * 1000
    assert await ws.receive_nothing(1)  # nothing realtime leaks to a delayed plan
    await ws.disconnect()


async def test_a_removed_member_is_closed_with_4403_and_others_stay(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    member_session = await committed.member(tenant, f"member@{tenant.organisation.slug}.example")
    owner_ws = await streaming(tenant)
    member_ws = connect(tenant.host, session=member_session, query="symbols=AAPL")
    await member_ws.connect()
    assert (await receive(member_ws))["type"] == "snapshot"

    def remove_member() -> None:
        remove_members_but_the_owner(tenant)

    await sync_to_async(remove_member)()

    error = await receive_until(member_ws, "error", within=2)
    assert error["code"] == "forbidden"
    assert "no longer a member" in error["message"]
    assert await member_ws.receive_output(2) == {"type": "websocket.close", "code": 4403}
    await owner_ws.send_json_to({"action": "ping"})
    assert (await receive_until(owner_ws, "pong"))["type"] == "pong"
    await owner_ws.disconnect()


async def test_an_open_stream_follows_its_watchlist_when_it_is_edited(committed: Committed, feed: Feed) -> None:
    tenant = await committed.tenant("pro")
    watchlist_id = await sync_to_async(make_watchlist)(tenant.schema, ["AAPL", "MSFT"])
    ws = await streaming(tenant, f"watchlist={watchlist_id}")

    def edit() -> None:
        activate_schema(tenant.schema)
        try:
            watchlist_add_symbols(organisation=tenant.organisation, watchlist_id=watchlist_id, symbols=["NVDA"])
            watchlist_remove_symbol(organisation=tenant.organisation, watchlist_id=watchlist_id, symbol="MSFT")
        finally:
            activate_public_schema()

    await sync_to_async(edit)()
    changes: dict[str, dict[str, Any]] = {}
    while len(changes) < 2:
        message = await receive(ws, within=2)
        if message["type"] in {"subscribed", "unsubscribed"}:
            changes[message["type"]] = message
    assert (changes["subscribed"]["symbols"], changes["subscribed"]["rejected"]) == (["NVDA"], [])
    assert (changes["unsubscribed"]["symbols"], changes["unsubscribed"]["reason"]) == (["MSFT"], "watchlist")
    seen: set[str] = set()
    for _ in range(20):
        seen |= {q["symbol"] for q in (await receive_until(ws, "quotes"))["quotes"]}
    assert "NVDA" in seen
    assert "MSFT" not in seen
    await ws.disconnect()


async def test_a_stream_of_another_watchlist_ignores_the_edit(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    watched = await sync_to_async(make_watchlist)(tenant.schema, ["AAPL"])
    edited = await sync_to_async(make_watchlist)(tenant.schema, ["MSFT"], "Other")
    ws = await streaming(tenant, f"watchlist={watched}")

    def edit() -> None:
        activate_schema(tenant.schema)
        try:
            watchlist_add_symbols(organisation=tenant.organisation, watchlist_id=edited, symbols=["NVDA"])
        finally:
            activate_public_schema()

    await sync_to_async(edit)()
    assert await ws.receive_nothing(1.5)
    await ws.disconnect()


async def test_throttle_at_one_a_second_is_what_a_client_sees(committed: Committed, feed: Feed) -> None:
    tenant = await committed.tenant("pro")
    ws = await streaming(tenant, "symbols=AAPL")
    await ws.send_json_to({"action": "throttle", "max_per_second": 1})
    await receive_until(ws, "quotes")  # the first quote after the throttle
    seen: list[int] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < 3.2:
        message = await receive(ws, within=2)
        if message["type"] == "quotes":
            seen.extend(q["ts"] for q in message["quotes"] if q["symbol"] == "AAPL")
    await ws.disconnect()
    assert 2 <= len(seen) <= 4, seen  # the feed ticks AAPL dozens of times a second
    assert all(b - a >= 900 for a, b in itertools.pairwise(seen)), seen


async def test_a_bad_throttle_is_a_bad_request_and_the_stream_stays(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    ws = await streaming(tenant)
    await ws.send_json_to({"action": "throttle", "max_per_second": 500})
    error = await receive_until(ws, "error")
    assert error["code"] == "bad_request"
    await ws.send_json_to({"action": "ping"})
    assert (await receive_until(ws, "pong"))["type"] == "pong"
    await ws.disconnect()


async def test_a_fired_alert_reaches_every_open_dashboard(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    first, second = await streaming(tenant), await streaming(tenant)
    alert = {"id": 7, "name": "AAPL above 200", "symbol": "AAPL", "condition": "above 200", "price": 200.5, "ts": 1}
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    await layer.group_send(control_group(tenant.schema), {"type": "alert.fired", "alert": alert})
    for ws in (first, second):
        assert (await receive_until(ws, "alert", within=2))["alert"] == alert
        await ws.disconnect()
