"""The websocket stack in front of the consumer: per-address connect limit, query string, origin check,
tenant from Host, session cookie.

Each step adds what it found to the connection's scope in place: the stack is ours from the server to
the consumer, and a copy per step would be kept for the connection's life (~0.5 KB each).

A refusal here still follows SPEC: the socket is accepted, sent an `error` message, then closed
with the matching code (a refusal before `accept` would only be an HTTP 403 to the browser).
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.http.cookie import parse_cookie

from core.inflight import InFlight
from core.ratelimit import address_limiter_async, client_address, scope_request
from widgets.origins import request_origin

from .access import organisation_ref_cached, organisation_ref_for_host
from .metrics import STREAM_COUNTS
from .params import StreamParams, stream_params_parse
from .protocol import (
    ORIGIN_FORBIDDEN,
    SERVER_RESTART,
    UNKNOWN_TENANT,
    WIDGET_ORIGIN_MISSING,
    Refusal,
    connects_rate_limited,
)

logger = logging.getLogger(__name__)

HOST_LOOKUPS = InFlight()  # a storm's connects to one host read it from the database once

Scope = dict[str, Any]


async def websocket_refuse(receive: Any, send: Any, refusal: Refusal) -> None:
    """Accept, say why, close with the refusal's code."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    STREAM_COUNTS.refusals[int(refusal.close_code)] += 1
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": orjson.dumps(refusal.message_dict()).decode()})
    await send({"type": "websocket.close", "code": int(refusal.close_code)})


def header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def hostname_of(scope: Scope) -> str:
    return header(scope, b"host").split(":")[0].lower().rstrip(".")


def origin_hostname(origin: str) -> str | None:
    """The host name of an Origin header; None for "null" or one that does not parse."""
    try:
        return (urlsplit(origin).hostname or "").lower() or None
    except ValueError:
        return None


async def connects_limit(scope: Scope) -> Refusal | None:
    """Every connect attempt counts against its client address's budget (RATE_LIMIT_WS_CONNECTS), first,
    so that a flood of attempts, well-formed or not, costs one Redis call each and no database work."""
    verdict = await address_limiter_async().hit("ws_connect", client_address(scope_request(scope)))
    return None if verdict.allowed else connects_rate_limited(verdict.retry_after)


async def params_parse(scope: Scope) -> Refusal | None:
    """The query string, parsed once into scope["stream_params"]; a malformed one is refused here."""
    params = stream_params_parse(bytes(scope.get("query_string", b"")))
    if isinstance(params, Refusal):
        return params
    scope["stream_params"] = params
    return None


async def origin_check(scope: Scope) -> Refusal | None:
    """Browsers always send Origin on websockets. A signed-in stream must come from a page of the same
    host; a widget viewer must send an Origin, which the connect step checks against the widget's list
    (scope["origin"]). No exception for any parameter: a check that can be skipped is no check."""
    origin = header(scope, b"origin")
    params: StreamParams = scope["stream_params"]
    if params.widget is not None:
        viewer_origin = request_origin(origin)
        if viewer_origin is None:
            return WIDGET_ORIGIN_MISSING
        scope["origin"] = viewer_origin
        return None
    if origin and origin_hostname(origin) != hostname_of(scope):
        return ORIGIN_FORBIDDEN
    return None


async def tenant_resolve(scope: Scope) -> Refusal | None:
    """The organisation of the Host header into scope["organisation"]; 4404 when none."""
    hostname = hostname_of(scope)
    try:
        organisation = await HOST_LOOKUPS.get(
            hostname,
            lambda: organisation_ref_cached(hostname),
            lambda: database_sync_to_async(organisation_ref_for_host, thread_sensitive=False)(hostname),
        )
    except DatabaseError:  # away (restarting): reconnect with backoff, not an HTTP 500 to the handshake
        logger.warning("database unreachable at a connect to %s: closing 1012", hostname, exc_info=True)
        return SERVER_RESTART
    if organisation is None:
        return UNKNOWN_TENANT
    scope["organisation"] = organisation
    return None


async def session_cookie(scope: Scope) -> Refusal | None:
    """The session cookie of this host into scope["session_key"] (None when signed out); the session is
    read with the consumer's other connect checks, in one database call."""
    session_key = parse_cookie(header(scope, b"cookie")).get(settings.SESSION_COOKIE_NAME)
    scope["session_key"] = session_key or None
    return None


# In this order; the first refusal ends the connect.
CONNECT_STEPS: tuple[Callable[[Scope], Awaitable[Refusal | None]], ...] = (
    connects_limit, params_parse, origin_check, tenant_resolve, session_cookie,
)  # fmt: skip


class WebsocketConnectMiddleware:
    """The steps before the consumer, one after the other, each adding what it found to the scope.

    One middleware rather than one per step: an ASGI middleware's frame stays alive for as long as
    its connection (it awaits the app), and five of them cost ~2 KB a connection for nothing.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        for step in CONNECT_STEPS:
            refusal = await step(scope)
            if refusal is not None:
                return await websocket_refuse(receive, send, refusal)
        return await self.inner(scope, receive, send)


def own_origin(scope: Scope) -> str | None:
    """The origin of the organisation's own pages, as seen by this connection (a widget's preview)."""
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    return request_origin(f"{scheme}://{header(scope, b'host')}")


def websocket_stack(inner: Any) -> Any:
    return WebsocketConnectMiddleware(inner)
