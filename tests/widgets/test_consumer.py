"""Widget viewers through the whole ASGI application: token, Origin, active flag, quota, live edits."""

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from streaming.feed import Feed
from streaming.groups import control_group
from streaming.state import LeaseKind, stream_state
from tenants.models import SubscriptionStatus
from tests.streaming.conftest import Committed, Tenant, connect, expect_refusal, receive, receive_until
from tests.watchlists.conftest import inside
from widgets.models import Widget
from widgets.services import WidgetSpec, widget_create, widget_delete, widget_set_active, widget_update
from widgets.tokens import widget_token_issue

pytestmark = [pytest.mark.asyncio]

SITE = "https://www.example.com"
OTHER_SITE = "https://shop.example.com"


async def make_widget(tenant: Tenant, **fields: Any) -> Widget:
    spec = WidgetSpec(
        **{"name": "Homepage", "symbols": ("AAPL", "MSFT"), "allowed_origins": (SITE, OTHER_SITE), **fields}
    )

    def create() -> Widget:
        with inside(tenant.organisation):
            return widget_create(organisation=tenant.organisation, spec=spec)

    return await sync_to_async(create)()


async def change(tenant: Tenant, write: Any, widget: Widget, **kwargs: Any) -> None:
    def run() -> None:
        with inside(tenant.organisation):
            write(organisation=tenant.organisation, widget_id=widget.pk, **kwargs)

    await sync_to_async(run)()


def token_for(tenant: Tenant, widget: Widget, origin: str = SITE) -> str:
    return widget_token_issue(schema_name=tenant.schema, public_id=widget.public_id, origin=origin)


def viewer(
    tenant: Tenant, widget: Widget, *, origin: str | None = SITE, token: str | None = None
) -> WebsocketCommunicator:
    token = token if token is not None else token_for(tenant, widget, origin or SITE)
    return connect(tenant.host, query=f"widget={widget.public_id}&token={token}", origin=origin)


async def test_a_viewer_gets_the_widget_and_its_quotes(committed: Committed, feed: Feed) -> None:
    tenant = await committed.tenant("pro")
    widget = await make_widget(tenant, kind="ticker_tape", theme="dark")
    ws = viewer(tenant, widget)
    assert (await ws.connect())[0]
    snapshot = await receive(ws)
    assert snapshot["type"] == "snapshot"
    assert snapshot["widget"] == {"id": widget.public_id, "name": "Homepage", "kind": "ticker_tape", "theme": "dark"}
    assert snapshot["simulated"] is True
    update = await receive_until(ws, "quotes")
    assert {q["symbol"] for q in update["quotes"]} <= {"AAPL", "MSFT"}
    assert await stream_state().lease_count(LeaseKind.WIDGET, tenant.schema) == 1
    assert await stream_state().lease_count(LeaseKind.STREAM, tenant.schema) == 0
    await ws.disconnect()
    assert await stream_state().lease_count(LeaseKind.WIDGET, tenant.schema) == 0


async def test_a_viewer_cannot_choose_symbols(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    widget = await make_widget(tenant)
    ws = viewer(tenant, widget)
    await ws.connect()
    await receive(ws)
    for action in ("subscribe", "unsubscribe"):
        await ws.send_json_to({"action": action, "symbols": ["TSLA"]})
        error = await receive_until(ws, "error")
        assert error["code"] == "forbidden"
    await ws.send_json_to({"action": "ping"})
    assert (await receive_until(ws, "pong"))["type"] == "pong"
    await ws.disconnect()


async def test_bad_tokens_are_refused(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    other_tenant = await committed.tenant("pro")
    widget = await make_widget(tenant)
    second = await make_widget(tenant, name="Second")
    foreign = await make_widget(other_tenant)
    good = token_for(tenant, widget)
    tampered = good[:-3] + ("aaa" if not good.endswith("aaa") else "bbb")
    await expect_refusal(viewer(tenant, widget, token=tampered), 4401, "not_authenticated")
    await expect_refusal(viewer(tenant, widget, token=token_for(tenant, second)), 4401, "not_authenticated")
    await expect_refusal(viewer(tenant, widget, token=token_for(other_tenant, foreign)), 4401, "not_authenticated")
    with override_settings(WIDGET_TOKEN_SECONDS=0):
        await asyncio.sleep(1.1)
        error = await expect_refusal(viewer(tenant, widget, token=good), 4401, "not_authenticated")
    assert "expired" in error["message"]


async def test_a_token_replayed_from_another_origin_is_refused(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    widget = await make_widget(tenant)
    token = token_for(tenant, widget, SITE)
    # OTHER_SITE is allowed too, but the token was issued to SITE.
    await expect_refusal(viewer(tenant, widget, origin=OTHER_SITE, token=token), 4403, "forbidden")
    await expect_refusal(viewer(tenant, widget, origin="https://evil.example", token=token), 4403, "forbidden")
    await expect_refusal(viewer(tenant, widget, origin=None, token=token), 4403, "forbidden")


async def test_an_origin_taken_off_the_list_is_refused_even_with_its_token(
    committed: Committed, hub_cleanup: None
) -> None:
    tenant = await committed.tenant("pro")
    widget = await make_widget(tenant)
    token = token_for(tenant, widget, OTHER_SITE)
    spec = WidgetSpec(name="Homepage", symbols=("AAPL",), allowed_origins=(SITE,))
    await change(tenant, widget_update, widget, spec=spec)
    error = await expect_refusal(viewer(tenant, widget, origin=OTHER_SITE, token=token), 4403, "forbidden")
    assert "not allowed on this web site" in error["message"]


async def test_a_widget_token_does_not_open_another_organisation_stream(
    committed: Committed, hub_cleanup: None
) -> None:
    tenant = await committed.tenant("pro")
    other = await committed.tenant("pro")
    widget = await make_widget(tenant)
    ws = connect(other.host, query=f"widget={widget.public_id}&token={token_for(tenant, widget)}", origin=SITE)
    await expect_refusal(ws, 4401, "not_authenticated")


async def test_a_revoked_widget_is_refused_and_revoking_closes_open_viewers(
    committed: Committed, hub_cleanup: None
) -> None:
    tenant = await committed.tenant("pro")
    widget = await make_widget(tenant)
    viewers = [viewer(tenant, widget) for _ in range(3)]
    for ws in viewers:
        await ws.connect()
        await receive(ws)
    await change(tenant, widget_set_active, widget, active=False)
    for ws in viewers:
        error = await receive_until(ws, "error", within=2)
        assert error["code"] == "forbidden"
        assert "turned off" in error["message"]
        assert (await ws.receive_output(2))["code"] == 4403
    assert await stream_state().lease_count(LeaseKind.WIDGET, tenant.schema) == 0
    await expect_refusal(viewer(tenant, widget), 4403, "forbidden")


async def test_deleting_closes_open_viewers(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    widget = await make_widget(tenant)
    ws = viewer(tenant, widget)
    await ws.connect()
    await receive(ws)
    await change(tenant, widget_delete, widget)
    assert "no longer exists" in (await receive_until(ws, "error", within=2))["message"]


async def test_an_edit_reaches_open_viewers(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    widget = await make_widget(tenant)
    ws = viewer(tenant, widget)
    await ws.connect()
    await receive(ws)
    spec = WidgetSpec(name="Tape", kind="ticker_tape", symbols=("MSFT", "NVDA"), allowed_origins=(SITE,))
    await change(tenant, widget_update, widget, spec=spec)
    shown = await receive_until(ws, "widget", within=2)
    assert shown["widget"]["name"] == "Tape"
    assert shown["widget"]["kind"] == "ticker_tape"
    assert (await receive_until(ws, "unsubscribed", within=2))["symbols"] == ["AAPL"]
    assert (await receive_until(ws, "subscribed", within=2))["symbols"] == ["NVDA"]
    await ws.disconnect()


async def test_viewers_count_against_their_own_quota_never_streams(committed: Committed, hub_cleanup: None) -> None:
    plan = await committed.plan(max_streams=1, max_widgets=1, max_widget_viewers=2)
    tenant = await committed.tenant(plan)
    widget = await make_widget(tenant)
    viewers = [viewer(tenant, widget) for _ in range(2)]
    for ws in viewers:
        await ws.connect()
        assert (await receive(ws))["type"] == "snapshot"
    error = await expect_refusal(viewer(tenant, widget), 4429, "stream_limit")
    assert error["limits"] == {"max_widget_viewers": 2}
    member = connect(tenant.host, session=tenant.session)  # the plan's one stream is still free
    await member.connect()
    assert (await receive(member))["type"] == "snapshot"
    await member.disconnect()
    await viewers[0].disconnect()
    third = viewer(tenant, widget)
    await third.connect()
    assert (await receive(third))["type"] == "snapshot"
    await third.disconnect()
    await viewers[1].disconnect()


async def test_an_unpaid_organisation_widget_is_4402(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    widget = await make_widget(tenant)
    await sync_to_async(type(tenant.organisation).objects.filter(pk=tenant.organisation.pk).update)(
        subscription_status=SubscriptionStatus.CANCELED
    )
    await expect_refusal(viewer(tenant, widget), 4402, "payment_required")


@pytest.mark.parametrize(
    "query",
    [
        "widget=w_AAAAAAAAAAAAAAAA",
        "token=abc",
        "widget=nope&token=abc",
        "widget=w_AAAAAAAAAAAAAAAA&token=abc&symbols=AAPL",
        "widget=w_AAAAAAAAAAAAAAAA&token=",
    ],
)
async def test_malformed_widget_queries_are_4400(committed: Committed, hub_cleanup: None, query: str) -> None:
    tenant = await committed.tenant("pro")
    await expect_refusal(connect(tenant.host, query=query, origin=SITE), 4400, "bad_request")


async def test_a_member_stream_still_needs_a_same_host_origin(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    await expect_refusal(connect(tenant.host, session=tenant.session, origin=SITE), 4403, "forbidden")


async def test_an_unknown_widget_is_refused(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    widget = Widget(public_id="w_AAAAAAAAAAAAAAAA")
    await expect_refusal(viewer(tenant, widget), 4403, "forbidden")


async def test_viewers_that_vanish_give_their_places_back(committed: Committed, hub_cleanup: None) -> None:
    """Gone before reading the snapshot, or killed mid-stream (the app task cancelled): no place stays taken."""
    plan = await committed.plan(max_widgets=1, max_widget_viewers=2)
    tenant = await committed.tenant(plan)
    widget = await make_widget(tenant)
    for _ in range(3):
        unread = viewer(tenant, widget)
        assert (await unread.connect())[0]
        await unread.disconnect()  # a close frame before the snapshot was read
        killed = viewer(tenant, widget)
        await killed.connect()
        await receive(killed)
        killed.future.cancel()  # the connection's task dies where it stands
        await asyncio.sleep(0.05)
    assert await stream_state().lease_count(LeaseKind.WIDGET, tenant.schema) == 0
    last = viewer(tenant, widget)
    await last.connect()
    assert (await receive(last))["type"] == "snapshot"
    await last.disconnect()


async def test_a_widget_paces_its_viewers_and_never_shows_alerts(committed: Committed, feed: Feed) -> None:
    tenant = await committed.tenant("pro")
    widget = await make_widget(tenant, symbols=("AAPL",), max_updates_per_second=1)
    ws = viewer(tenant, widget)
    await ws.connect()
    await receive(ws)
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    await layer.group_send(control_group(tenant.schema), {"type": "alert.fired", "alert": {"id": 1}})
    seen: list[str] = []
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < 2.5:
        message = await receive(ws, within=2)
        seen.append(message["type"])
    await ws.disconnect()
    assert "alert" not in seen
    assert 2 <= seen.count("quotes") <= 4, seen
