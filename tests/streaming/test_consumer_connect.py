"""The connect step through the whole ASGI application: every close code of SPEC, in order."""

import datetime as dt

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.models import User
from streaming.feed import Feed
from tenants.models import SubscriptionStatus
from tests.streaming.conftest import Committed, Tenant, connect, expect_refusal, receive, receive_until

pytestmark = [pytest.mark.asyncio]


async def test_a_member_gets_a_snapshot_first_then_live_updates(committed: Committed, feed: Feed) -> None:
    tenant = await committed.tenant("pro")
    ws = connect(tenant.host, session=tenant.session, query="symbols=aapl,MSFT")
    connected, _ = await ws.connect()
    assert connected

    snapshot = await receive(ws)
    assert snapshot["type"] == "snapshot"
    assert snapshot["delayed"] is False
    assert snapshot["limits"] == {"max_symbols": 50, "symbols": 2, "max_streams": 10}
    update = await receive_until(ws, "quotes")
    assert update["quotes"]
    for quote in update["quotes"]:
        assert quote["symbol"] in {"AAPL", "MSFT"}
        assert set(quote) == {"symbol", "price", "bid", "ask", "volume", "change", "change_pct", "ts"}
        assert quote["bid"] <= quote["price"] <= quote["ask"]
    await ws.disconnect()


async def test_a_second_connection_gets_cached_quotes_in_its_snapshot(committed: Committed, feed: Feed) -> None:
    tenant = await committed.tenant("pro")
    first = connect(tenant.host, session=tenant.session, query="symbols=AAPL")
    await first.connect()
    await receive_until(first, "quotes")

    second = connect(tenant.host, session=tenant.session, query="symbols=AAPL")
    await second.connect()
    snapshot = await receive(second)
    assert [q["symbol"] for q in snapshot["quotes"]] == ["AAPL"]
    await first.disconnect()
    await second.disconnect()


async def test_no_session_is_4401(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    await expect_refusal(connect(tenant.host), 4401, "not_authenticated")


async def test_a_forged_session_is_4401(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    await expect_refusal(connect(tenant.host, session="not-a-real-session-key"), 4401, "not_authenticated")


async def _user_update(tenant: Tenant, **fields: object) -> None:
    await User.objects.filter(pk=tenant.owner.pk).aupdate(**fields)


async def test_a_deactivated_user_is_4401(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    await _user_update(tenant, is_active=False)
    await expect_refusal(connect(tenant.host, session=tenant.session), 4401, "not_authenticated")


async def test_a_session_from_before_a_password_change_is_4401(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    await _user_update(tenant, password=make_password("a-new-password-2026"))
    await expect_refusal(connect(tenant.host, session=tenant.session), 4401, "not_authenticated")


async def test_an_expired_session_is_4401(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    await Session.objects.filter(pk=tenant.session).aupdate(expire_date=timezone.now() - dt.timedelta(seconds=1))
    await expect_refusal(connect(tenant.host, session=tenant.session), 4401, "not_authenticated")


async def test_a_member_of_a_on_bs_host_is_4403_and_never_sees_bs_quotes(committed: Committed, feed: Feed) -> None:
    alpha, beta = await committed.tenant("pro"), await committed.tenant("pro")
    beta_viewer = connect(beta.host, session=beta.session, query="symbols=AAPL")
    await beta_viewer.connect()

    intruder = connect(beta.host, session=alpha.session, query="symbols=AAPL")
    error = await expect_refusal(intruder, 4403, "forbidden")
    assert beta.organisation.name in error["message"]
    await receive_until(beta_viewer, "quotes")  # quotes of beta flow…
    assert intruder.output_queue.empty()  # …and the refused connection got none of them
    await beta_viewer.disconnect()


async def test_a_cross_origin_page_is_4403(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    ws = connect(tenant.host, session=tenant.session, origin="https://evil.example")
    await expect_refusal(ws, 4403, "forbidden")


@pytest.mark.parametrize("query", ["watchlist=1&widget=x", "watchlist=1&widget=", "symbols=AAPL&widget=w&token=t"])
async def test_widget_parameters_mixed_with_a_member_stream_are_refused(
    committed: Committed, hub_cleanup: None, query: str
) -> None:
    tenant = await committed.tenant("pro")
    ws = connect(tenant.host, session=tenant.session, query=query, origin="https://evil.example")
    error = await expect_refusal(ws, 4400, "bad_request")
    assert "?widget=<id>&token=<token> and nothing else" in error["message"]


async def test_a_widget_query_never_turns_a_session_into_a_stream_from_another_site(
    committed: Committed, hub_cleanup: None
) -> None:
    """The member's cookie rides along, but a widget connection is judged by its token alone."""
    tenant = await committed.tenant("pro")
    query = "widget=w_AAAAAAAAAAAAAAAA&token=forged"
    ws = connect(tenant.host, session=tenant.session, query=query, origin="https://evil.example")
    await expect_refusal(ws, 4401, "not_authenticated")


@pytest.mark.parametrize("query", ["watchlist=%C2%B2", "watchlist=1%00", "watchlist=1&watchlist=2", "symbols=AAPL&x=1"])
async def test_a_malformed_query_is_4400_not_a_server_error(
    committed: Committed, hub_cleanup: None, query: str
) -> None:
    tenant = await committed.tenant("pro")
    await expect_refusal(connect(tenant.host, session=tenant.session, query=query), 4400, "bad_request")


async def test_the_same_origin_page_is_accepted(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    ws = connect(tenant.host, session=tenant.session, origin=f"http://{tenant.host}:8000")
    connected, _ = await ws.connect()
    assert connected
    assert (await receive(ws))["type"] == "snapshot"
    await ws.disconnect()


async def test_an_unknown_host_is_4404(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    await expect_refusal(connect("nobody.localhost", session=tenant.session), 4404, "unknown_tenant")
    await expect_refusal(connect("localhost", session=tenant.session), 4404, "unknown_tenant")


@pytest.mark.parametrize("status", [SubscriptionStatus.CANCELED, SubscriptionStatus.UNPAID])
async def test_an_inactive_subscription_is_4402(committed: Committed, hub_cleanup: None, status: str) -> None:
    tenant = await committed.tenant("pro", subscription_status=status)
    error = await expect_refusal(connect(tenant.host, session=tenant.session), 4402, "payment_required")
    assert "billing" in error["message"]


async def test_past_due_is_4402_only_after_the_grace_period(committed: Committed, hub_cleanup: None) -> None:
    in_grace = await committed.tenant(
        "pro",
        subscription_status=SubscriptionStatus.PAST_DUE,
        payment_grace_until=timezone.now() + dt.timedelta(days=1),
    )
    expired = await committed.tenant(
        "pro",
        subscription_status=SubscriptionStatus.PAST_DUE,
        payment_grace_until=timezone.now() - dt.timedelta(hours=1),
    )
    ws = connect(in_grace.host, session=in_grace.session)
    assert (await ws.connect())[0]
    assert (await receive(ws))["type"] == "snapshot"
    await ws.disconnect()
    await expect_refusal(connect(expired.host, session=expired.session), 4402, "payment_required")


async def test_no_valid_symbol_is_4400_with_the_reasons(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    error = await expect_refusal(
        connect(tenant.host, session=tenant.session, query="symbols=NOPEXX,$$$"), 4400, "bad_request"
    )
    assert error["rejected"] == [
        {"symbol": "NOPEXX", "reason": "unknown_symbol"},
        {"symbol": "$$$", "reason": "invalid_symbol"},
    ]
    await expect_refusal(connect(tenant.host, session=tenant.session, query=""), 4400, "bad_request")


async def test_more_symbols_than_the_plan_allows_is_4429_symbol_limit(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("free")  # 5 symbols per stream
    error = await expect_refusal(
        connect(tenant.host, session=tenant.session, query="symbols=AAPL,MSFT,AMZN,GOOGL,NVDA,TSLA"),
        4429,
        "symbol_limit",
    )
    assert error["limits"] == {"max_symbols": 5, "symbols": 6, "max_streams": 2}


async def test_the_stream_beyond_max_streams_is_4429_stream_limit(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("free")  # 2 concurrent streams
    member_session = await committed.member(tenant, f"member@{tenant.organisation.slug}.example")
    open_streams = [connect(tenant.host, session=tenant.session), connect(tenant.host, session=member_session)]
    for ws in open_streams:
        assert (await ws.connect())[0]
        assert (await receive(ws))["type"] == "snapshot"

    error = await expect_refusal(connect(tenant.host, session=tenant.session), 4429, "stream_limit")
    assert error["limits"] == {"max_streams": 2}

    await open_streams[0].disconnect()
    again = connect(tenant.host, session=tenant.session)
    assert (await again.connect())[0]
    assert (await receive(again))["type"] == "snapshot"
    for ws in (open_streams[1], again):
        await ws.disconnect()


async def test_streams_of_one_organisation_do_not_count_against_another(
    committed: Committed, hub_cleanup: None
) -> None:
    alpha, beta = await committed.tenant("free"), await committed.tenant("free")
    streams = [connect(alpha.host, session=alpha.session) for _ in range(2)]
    for ws in streams:
        await ws.connect()
        await receive(ws)
    other = connect(beta.host, session=beta.session)
    assert (await other.connect())[0]
    assert (await receive(other))["type"] == "snapshot"
    for ws in (*streams, other):
        await ws.disconnect()
