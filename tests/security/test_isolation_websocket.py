"""Tenant isolation audit over the websocket: every route and client action, probed through the whole ASGI stack.

Connections: signed out, B's member on A's host, forged watchlist ids, spoofed Host and Origin headers,
widget tokens of another widget, organisation or Origin. Actions: each one of streaming.protocol.ACTIONS,
sent by a widget viewer (members-only ones are refused, SPEC "Widgets") and by A's member with forged
symbols. A new route or action fails test_every_websocket_route_and_action_is_in_the_registry.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from streaming.protocol import ACTIONS
from streaming.routing import websocket_urlpatterns
from tests.security.support import HUGE_ID, SITE, SPOOFED_HOST, UNKNOWN_HOST, Tally, World, tally_recorded
from tests.streaming.conftest import connect, expect_refusal, receive, receive_until

WEBSOCKET_ROUTES = {"ws/stock-market/"}


@dataclass(frozen=True)
class Action:
    """How one client action is sent, and what a widget viewer gets for it (None: served like a member)."""

    frame: dict[str, Any]
    viewer_refusal: str | None


ACTION_REGISTRY = {
    "subscribe": Action({"action": "subscribe", "symbols": ["TSLA"]}, "forbidden"),
    "unsubscribe": Action({"action": "unsubscribe", "symbols": ["AAPL"]}, "forbidden"),
    "ping": Action({"action": "ping"}, None),
    # The throttle only slows the viewer's own connection: no organisation's data or settings change.
    "throttle": Action({"action": "throttle", "max_per_second": 5}, None),
}


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    summary = f"{len(WEBSOCKET_ROUTES)} route, {len(ACTION_REGISTRY)} actions, {{}} probes, all refused"
    with tally_recorded("isolation audit (websocket)", lambda counts: summary.format(counts.probes)) as counts:
        yield counts


def test_every_websocket_route_and_action_is_in_the_registry() -> None:
    assert {str(pattern.pattern) for pattern in websocket_urlpatterns} == WEBSOCKET_ROUTES
    assert set(ACTIONS) == set(ACTION_REGISTRY), "a client action nobody said how to probe: add it here"


Refused = tuple[int, str]  # close code, error code
NOT_AUTHENTICATED: Refused = (4401, "not_authenticated")
FORBIDDEN: Refused = (4403, "forbidden")
UNKNOWN_TENANT: Refused = (4404, "unknown_tenant")
BAD_REQUEST: Refused = (4400, "bad_request")


def member_probes(world: World) -> dict[str, tuple[WebsocketCommunicator, Refused]]:
    """Connections of people who are not A's members, or of A's member from where no page of A is."""
    a, b = world.a, world.b

    def as_a(host: str = a.host, *, query: str = "symbols=AAPL", origin: str | None = None) -> WebsocketCommunicator:
        return connect(host, session=a.tenant.session, query=query, origin=origin)

    return {
        "signed out": (connect(a.host), NOT_AUTHENTICATED),
        "B's member on A's host": (connect(a.host, session=b.tenant.session), FORBIDDEN),
        "A's session, Host not under BASE_DOMAIN": (as_a(SPOOFED_HOST), UNKNOWN_TENANT),
        "A's session, the public host": (as_a("localhost"), UNKNOWN_TENANT),
        "A's session, unknown organisation": (as_a(UNKNOWN_HOST), UNKNOWN_TENANT),
        "A's session, a foreign Origin": (as_a(origin="https://evil.example"), FORBIDDEN),
        "A's session, B's pages as Origin": (as_a(origin=f"http://{b.host}"), FORBIDDEN),
        "A's session, a lookalike Origin": (as_a(origin=f"http://{a.host}.evil.example"), FORBIDDEN),
        "A's member, B's watchlist id": (as_a(query=f"watchlist={world.b_only('watchlist')}"), BAD_REQUEST),
        "A's member, a huge watchlist id": (as_a(query=f"watchlist={HUGE_ID}"), BAD_REQUEST),
        "A's member, a non-numeric watchlist id": (as_a(query="watchlist=x1"), BAD_REQUEST),
    }


def widget_probes(world: World) -> dict[str, tuple[WebsocketCommunicator, Refused]]:
    """Widget viewers holding a token that is not for this widget, this organisation, this Origin or this host."""
    a, b = world.a, world.b

    def viewer(host: str, public_id: str, token: str, origin: str | None = SITE) -> WebsocketCommunicator:
        return connect(host, query=f"widget={public_id}&token={token}", origin=origin)

    a_widget, b_first, b_second = a.widget_public_ids[0], b.widget_public_ids[0], b.widget_public_ids[1]
    a_token = a.widget_token()
    return {
        "A's token on B's host": (viewer(b.host, a_widget, a_token), NOT_AUTHENTICATED),
        "A's token for B's widget on B's host": (viewer(b.host, b_first, a_token), NOT_AUTHENTICATED),
        "B's token for one widget, used for another": (
            viewer(b.host, b_second, b.widget_token(b_first)),
            NOT_AUTHENTICATED,
        ),
        # A signed token, but A's schema has no such widget: "This widget no longer exists."
        "B's widget on A's host, a token naming A's schema": (
            viewer(a.host, b_first, a.widget_token(b_first)),
            FORBIDDEN,
        ),
        "A's token replayed from another Origin": (
            viewer(a.host, a_widget, a_token, "https://evil.example"),
            FORBIDDEN,
        ),
        "A's token without an Origin": (viewer(a.host, a_widget, a_token, None), FORBIDDEN),
        "A's token on a Host not under BASE_DOMAIN": (viewer(SPOOFED_HOST, a_widget, a_token), UNKNOWN_TENANT),
        "A's token on an unknown organisation's host": (viewer(UNKNOWN_HOST, a_widget, a_token), UNKNOWN_TENANT),
        "a forged token": (viewer(a.host, a_widget, a_token[:-4] + "AAAA"), NOT_AUTHENTICATED),
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["member", "widget"])
async def test_every_connection_probe_is_refused(world: World, hub_cleanup: None, tally: Tally, kind: str) -> None:
    probes = member_probes(world) if kind == "member" else widget_probes(world)
    for who, (communicator, (close_code, error_code)) in probes.items():
        try:
            error = await expect_refusal(communicator, close_code, error_code)
        except AssertionError as exc:
            raise AssertionError(f"{who}: {exc}") from exc
        assert not [marker for marker in world.a.markers + world.b.markers if marker in str(error)], who
        tally.probes += 1


async def until_pong(ws: WebsocketCommunicator) -> list[dict[str, Any]]:
    """Every message up to and including the first pong."""
    messages = [await receive(ws)]
    while messages[-1]["type"] != "pong":
        messages.append(await receive(ws))
    return messages


@pytest.mark.asyncio
@pytest.mark.parametrize("action", sorted(ACTION_REGISTRY))
async def test_a_widget_viewer_may_not_use_members_only_actions(
    world: World, hub_cleanup: None, tally: Tally, action: str
) -> None:
    spec = ACTION_REGISTRY[action]
    ws = connect(
        world.a.host, query=f"widget={world.a.widget_public_ids[0]}&token={world.a.widget_token()}", origin=SITE
    )
    assert (await ws.connect())[0]
    snapshot = await receive(ws)
    assert snapshot["type"] == "snapshot"
    await ws.send_json_to(spec.frame)
    await ws.send_json_to({"action": "ping"})
    replies = [message for message in await until_pong(ws) if message["type"] != "quotes"]
    if spec.viewer_refusal is None:
        assert replies == [{"type": "pong"}]  # ping's own pong, or the throttle's silence then ping's
    else:
        assert [reply["type"] for reply in replies] == ["error", "pong"]  # refused, and the connection stays up
        assert replies[0]["code"] == spec.viewer_refusal
    await ws.disconnect()
    tally.probes += 1


@pytest.mark.asyncio
@pytest.mark.parametrize("action", ["subscribe", "unsubscribe"])
async def test_a_member_cannot_name_another_organisations_groups_as_symbols(
    world: World, hub_cleanup: None, tally: Tally, action: str
) -> None:
    """Channel-layer groups are t.<schema>.q.<SYMBOL>: a symbol spelled like B's group is only an unknown symbol."""
    b_schema = world.b.tenant.schema
    forged = [f"t.{b_schema}.q.AAPL", f"t.{b_schema}.control", "../AAPL", "AAPL\x00", "*"]
    ws = connect(world.a.host, session=world.a.tenant.session, query="symbols=AAPL")
    assert (await ws.connect())[0]
    assert (await receive(ws))["type"] == "snapshot"
    await ws.send_json_to({"action": action, "symbols": forged})
    reply = await receive_until(ws, f"{action}d")
    if action == "subscribe":
        assert reply["symbols"] == []
        assert len(reply["rejected"]) == len(forged)
        assert {rejection["reason"] for rejection in reply["rejected"]} == {"invalid_symbol"}
    else:
        assert reply["symbols"] == []  # nothing it follows was named, so nothing stopped
    await ws.disconnect()
    tally.probes += 1
