"""Widget viewers against real uvicorn processes: the viewer limit holds across two web processes."""

import asyncio
from contextlib import AsyncExitStack

import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import ClientConnection

from tests.live import LiveServer
from tests.streaming import live_support
from tests.streaming.conftest import Committed, Tenant
from tests.streaming.live_support import expect_refused, recv_json, ws_connect
from tests.watchlists.conftest import inside
from widgets.models import Widget
from widgets.services import WidgetSpec, widget_create
from widgets.tokens import widget_token_issue

pytestmark = [pytest.mark.live, pytest.mark.asyncio]

# The live fixtures (pytest finds fixtures among a module's globals).
db, web, web_other = live_support.db, live_support.web, live_support.web_other

SITE = "https://www.example.com"


async def widget_of(tenant: Tenant) -> Widget:
    def create() -> Widget:
        with inside(tenant.organisation):
            spec = WidgetSpec(name="Tape", symbols=("AAPL",), allowed_origins=(SITE,))
            return widget_create(organisation=tenant.organisation, spec=spec)

    return await sync_to_async(create)()


def query(tenant: Tenant, widget: Widget) -> str:
    token = widget_token_issue(schema_name=tenant.schema, public_id=widget.public_id, origin=SITE)
    return f"widget={widget.public_id}&token={token}"


async def open_viewer(stack: AsyncExitStack, server: LiveServer, tenant: Tenant, widget: Widget) -> ClientConnection:
    ws = await stack.enter_async_context(ws_connect(server, tenant.host, None, query(tenant, widget), origin=SITE))
    assert (await recv_json(ws))["type"] == "snapshot"
    return ws


async def test_the_viewer_limit_holds_across_two_web_processes(
    committed: Committed, web: LiveServer, web_other: LiveServer
) -> None:
    plan = await committed.plan(max_streams=1, max_widgets=1, max_widget_viewers=2)
    tenant = await committed.tenant(plan)
    widget = await widget_of(tenant)
    async with AsyncExitStack() as stack:
        first = await open_viewer(stack, web, tenant, widget)
        await open_viewer(stack, web_other, tenant, widget)
        for server in (web, web_other):
            error = await expect_refused(
                server, tenant.host, None, query(tenant, widget), 4429, "stream_limit", origin=SITE
            )
            assert error["limits"] == {"max_widget_viewers": 2}
        # Viewers never take the plan's one stream: the owner's dashboard still opens.
        async with ws_connect(web_other, tenant.host, tenant.session, "symbols=AAPL") as member:
            assert (await recv_json(member))["type"] == "snapshot"
        await first.close()
        await asyncio.sleep(0.2)
        await open_viewer(stack, web_other, tenant, widget)  # the freed place is taken from the other process


async def test_a_live_server_refuses_a_site_not_in_the_list(committed: Committed, web: LiveServer) -> None:
    tenant = await committed.tenant("pro")
    widget = await widget_of(tenant)
    async with ws_connect(web, tenant.host, None, query(tenant, widget), origin="https://evil.example") as ws:
        error = await recv_json(ws)
    assert error["code"] == "forbidden"
