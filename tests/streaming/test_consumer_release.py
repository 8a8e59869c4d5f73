"""Whatever ends a connection gives its lease and room place back once; one broken connection never
stops the others' control messages or quotes. Through the whole ASGI application, in this loop's hub."""

import asyncio
import contextlib
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import override_settings

from billing.services import plan_save
from config.asgi import application
from streaming.feed import Feed
from streaming.hub import stream_hub
from streaming.state import LeaseKind, stream_state
from tenants.services.organisations import organisation_staff_delete
from tests.streaming.conftest import (
    Committed,
    Tenant,
    connect,
    expect_refusal,
    receive,
    receive_until,
    remove_members_but_the_owner,
)

pytestmark = [pytest.mark.asyncio]


class SendFails:
    """An ASGI wrapper whose `send` raises from the `fail_at`-th message on, as a server's does when
    its client has gone (uvicorn's ClientDisconnected is an OSError; a send after a close is a
    RuntimeError)."""

    def __init__(self, fail_at: int, error: type[Exception]) -> None:
        self.fail_at = fail_at
        self.error = error
        self.sent = 0
        self.failed = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def failing_send(message: dict[str, Any]) -> None:
            if self.sent >= self.fail_at:
                self.failed.set()
                raise self.error("the client is gone")
            self.sent += 1
            await send(message)

        await application(scope, receive, failing_send)


async def stream_count(tenant: Tenant) -> int:
    return await stream_state().lease_count(LeaseKind.STREAM, tenant.schema)


async def places_back_to_zero(tenant: Tenant, within: float = 2.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await stream_count(tenant) == 0 and tenant.schema not in stream_hub().rooms:
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize("error", [OSError, RuntimeError])
@pytest.mark.parametrize("fail_at", [0, 1, 2])  # the accept, the snapshot, the first message after it
async def test_a_send_that_raises_at_any_step_gives_the_place_back(
    committed: Committed, hub_cleanup: None, fail_at: int, error: type[Exception]
) -> None:
    tenant = await committed.tenant(await committed.plan(max_streams=1))
    headers = [(b"host", tenant.host.encode()), (b"cookie", f"sessionid={tenant.session}".encode())]
    app = SendFails(fail_at, error)
    # NOPE is rejected, so a `subscribed` message follows the snapshot (sent by the sender task).
    ws = WebsocketCommunicator(app, "/ws/stock-market/?symbols=AAPL,NOPE", headers=headers)
    await ws.send_input({"type": "websocket.connect"})
    await asyncio.wait_for(app.failed.wait(), 5)

    assert await places_back_to_zero(tenant), "the stream's lease or room place leaked"
    with contextlib.suppress(error):  # the application may have ended with the error already
        await ws.send_input({"type": "websocket.disconnect", "code": 1006})  # what the server reports next
        await ws.wait(5)
    assert await stream_count(tenant) == 0
    again = connect(tenant.host, session=tenant.session, query="symbols=AAPL")
    assert (await again.connect())[0]
    assert (await receive(again))["type"] == "snapshot", "a 1-stream plan can stream again"
    await again.disconnect()


async def test_a_send_that_raises_while_handling_a_frame_gives_the_place_back(
    committed: Committed, hub_cleanup: None
) -> None:
    tenant = await committed.tenant(await committed.plan(max_streams=1))
    headers = [(b"host", tenant.host.encode()), (b"cookie", f"sessionid={tenant.session}".encode())]
    app = SendFails(2, RuntimeError)  # accept and snapshot go out; the pong's send raises
    ws = WebsocketCommunicator(app, "/ws/stock-market/?symbols=AAPL", headers=headers)
    await ws.connect()
    assert (await receive(ws))["type"] == "snapshot"
    await ws.send_to(text_data='{"action":"ping"}')
    await asyncio.wait_for(app.failed.wait(), 5)
    assert await places_back_to_zero(tenant)


async def test_frames_after_the_server_closed_are_ignored_and_the_place_is_given_back(
    committed: Committed, hub_cleanup: None
) -> None:
    """The 7th bad frame of a burst used to arrive after the 4400 close and raise, leaking the place."""
    tenant = await committed.tenant(await committed.plan(max_streams=1))
    ws = connect(tenant.host, session=tenant.session, query="symbols=AAPL")
    await ws.connect()
    assert (await receive(ws))["type"] == "snapshot"
    for _ in range(12):
        await ws.send_to(text_data="garbage")
    while (output := await ws.receive_output(5))["type"] != "websocket.close":
        pass
    assert output["code"] == 4400
    assert await places_back_to_zero(tenant), "released at the close, before the client's disconnect"
    assert await ws.receive_nothing(0.5), "nothing is sent after the close"
    await ws.send_input({"type": "websocket.disconnect", "code": 1000})
    await ws.wait(5)  # the consumer ends normally: no exception from the frames after the close


async def members(committed: Committed, tenant: Tenant, count: int) -> list[WebsocketCommunicator]:
    """`count` streaming connections of different members of the tenant (the owner's first)."""
    sessions = [tenant.session]
    for n in range(1, count):
        sessions.append(await committed.member(tenant, f"member{n}@{tenant.organisation.slug}.example"))
    streams = []
    for session in sessions:
        ws = connect(tenant.host, session=session, query="symbols=AAPL")
        await ws.connect()
        assert (await receive(ws))["type"] == "snapshot"
        streams.append(ws)
    return streams


def break_control(tenant: Tenant, user_id: int, failure: Any) -> None:
    """Make one connection's control handling fail (fault injection into our own consumer)."""
    room = stream_hub().rooms[tenant.schema]
    [broken] = [m for m in room.connections if getattr(m, "user_id", None) == user_id]
    broken.control = failure  # type: ignore[method-assign]


async def raise_always(event: dict[str, Any]) -> None:
    raise RuntimeError("a broken connection")


async def room_with_a_broken_owner(committed: Committed) -> tuple[Tenant, list[WebsocketCommunicator]]:
    """Three members streaming in one room; the owner's connection fails on every control message."""
    tenant = await committed.tenant("pro")
    streams = await members(committed, tenant, 3)
    break_control(tenant, tenant.owner.pk, raise_always)
    return tenant, streams


async def test_a_broken_connection_does_not_stop_control_messages_for_the_room(
    committed: Committed, hub_cleanup: None
) -> None:
    """Members removed while another connection of the room fails on every control message are still closed."""
    tenant, (owner_ws, first_ws, second_ws) = await room_with_a_broken_owner(committed)

    await sync_to_async(remove_members_but_the_owner)(tenant)

    for ws in (first_ws, second_ws):
        error = await receive_until(ws, "error", within=2)
        assert error["code"] == "forbidden"
        assert await ws.receive_output(2) == {"type": "websocket.close", "code": 4403}
    broken = await receive_until(owner_ws, "error", within=2)
    assert broken["code"] == "server_error"
    assert await owner_ws.receive_output(2) == {"type": "websocket.close", "code": 1011}
    assert await places_back_to_zero(tenant)


async def test_a_deleted_organisations_streams_all_close_even_with_a_broken_one(
    committed: Committed, hub_cleanup: None
) -> None:
    tenant, streams = await room_with_a_broken_owner(committed)

    def delete_organisation() -> None:
        organisation_staff_delete(organisation=tenant.organisation)
        committed.organisations.remove(tenant.organisation)

    await sync_to_async(delete_organisation)()

    for ws in streams:
        while (output := await ws.receive_output(2))["type"] != "websocket.close":
            pass
        assert output["code"] in {4403, 4404, 1011}
    assert await places_back_to_zero(tenant)


async def test_a_hung_connection_delays_neither_quotes_nor_other_connections_control(
    committed: Committed, feed: Feed
) -> None:
    plan = await committed.plan(max_symbols_per_stream=5, max_streams=5)
    tenant = await committed.tenant(plan)
    owner_ws, member_ws = await members(committed, tenant, 2)
    await receive_until(member_ws, "quotes")
    hung = asyncio.Event()

    async def hang(event: dict[str, Any]) -> None:
        hung.set()
        await asyncio.sleep(60)

    break_control(tenant, tenant.owner.pk, hang)

    def raise_limits() -> None:
        plan.max_symbols_per_stream = 9
        plan_save(plan=plan, changed=["max_symbols_per_stream"])

    await sync_to_async(raise_limits)()
    limits = await receive_until(member_ws, "limits", within=2)
    assert limits["max_symbols"] == 9
    assert hung.is_set()
    for _ in range(5):  # quotes keep coming while the other connection's handler hangs
        assert (await receive_until(member_ws, "quotes", within=2))["quotes"]
    await member_ws.disconnect()
    await owner_ws.disconnect()


async def test_actions_beyond_the_budget_are_rate_limited_then_closed_4400(
    committed: Committed, hub_cleanup: None
) -> None:
    tenant = await committed.tenant("pro")
    ws = connect(tenant.host, session=tenant.session, query="symbols=AAPL")
    await ws.connect()
    assert (await receive(ws))["type"] == "snapshot"
    for _ in range(60):
        await ws.send_to(text_data='{"action":"subscribe","symbols":["MSFT","AAPL"]}')
    codes = []
    while (output := await ws.receive_output(5))["type"] != "websocket.close":
        message = orjson.loads(output["text"])
        codes.append((message["type"], message.get("code")))
    assert output["code"] == 4400
    assert ("subscribed", None) in codes
    assert ("error", "rate_limited") in codes
    assert codes[-1] == ("error", "bad_request"), "the close says why"
    assert await places_back_to_zero(tenant)


async def test_a_session_from_before_a_key_rotation_still_streams(committed: Committed, hub_cleanup: None) -> None:
    """As pages do: Django's get_user accepts a session hash made with a key of SECRET_KEY_FALLBACKS."""
    tenant = await committed.tenant("pro")
    old_key = settings.SECRET_KEY
    with override_settings(SECRET_KEY="rotated-" + old_key, SECRET_KEY_FALLBACKS=[old_key]):
        ws = connect(tenant.host, session=tenant.session, query="symbols=AAPL")
        await ws.connect()
        assert (await receive(ws))["type"] == "snapshot"
        await ws.disconnect()
    # Without the fallback it is signed out (at once here: the process's reuse of a connect check, up to
    # STREAM_SESSION_CACHE_SECONDS, is tests/streaming/test_session_cache.py's subject).
    with override_settings(SECRET_KEY="rotated-" + old_key, SECRET_KEY_FALLBACKS=[], STREAM_SESSION_CACHE_SECONDS=0):
        await expect_refusal(connect(tenant.host, session=tenant.session), 4401, "not_authenticated")
