"""The websocket stack in front of the consumer: per-address connect limit, query string, origin check,
tenant from Host, session cookie.

A refusal here still follows SPEC: the socket is accepted, sent an `error` message, then closed
with the matching code (a refusal before `accept` would only be an HTTP 403 to the browser).
"""

import logging
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


class _Middleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner


class ConnectRateLimitMiddleware(_Middleware):
    """Counts every connect attempt against its client address's budget (RATE_LIMIT_WS_CONNECTS), first,
    so that a flood of attempts, well-formed or not, costs one Redis call each and no database work."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        verdict = await address_limiter_async().hit("ws_connect", client_address(scope_request(scope)))
        if not verdict.allowed:
            return await websocket_refuse(receive, send, connects_rate_limited(verdict.retry_after))
        return await self.inner(scope, receive, send)


class StreamParamsMiddleware(_Middleware):
    """The query string, parsed once into scope["stream_params"]; a malformed one is refused here."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        params = stream_params_parse(bytes(scope.get("query_string", b"")))
        if isinstance(params, Refusal):
            return await websocket_refuse(receive, send, params)
        return await self.inner({**scope, "stream_params": params}, receive, send)


class OriginCheckMiddleware(_Middleware):
    """Browsers always send Origin on websockets. A signed-in stream must come from a page of the same
    host; a widget viewer must send an Origin, which the connect step checks against the widget's list
    (scope["origin"]). No exception for any parameter: a check that can be skipped is no check."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        origin = header(scope, b"origin")
        params: StreamParams = scope["stream_params"]
        if params.widget is not None:
            viewer_origin = request_origin(origin)
            if viewer_origin is None:
                return await websocket_refuse(receive, send, WIDGET_ORIGIN_MISSING)
            return await self.inner({**scope, "origin": viewer_origin}, receive, send)
        if origin and origin_hostname(origin) != hostname_of(scope):
            return await websocket_refuse(receive, send, ORIGIN_FORBIDDEN)
        return await self.inner(scope, receive, send)


class TenantMiddleware(_Middleware):
    """Resolve the organisation from the Host header into scope["organisation"]; 4404 when none."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        hostname = hostname_of(scope)
        try:
            organisation = await HOST_LOOKUPS.get(
                hostname,
                lambda: organisation_ref_cached(hostname),
                lambda: database_sync_to_async(organisation_ref_for_host, thread_sensitive=False)(hostname),
            )
        except DatabaseError:  # away (restarting): reconnect with backoff, not an HTTP 500 to the handshake
            logger.warning("database unreachable at a connect to %s: closing 1012", hostname, exc_info=True)
            return await websocket_refuse(receive, send, SERVER_RESTART)
        if organisation is None:
            return await websocket_refuse(receive, send, UNKNOWN_TENANT)
        return await self.inner({**scope, "organisation": organisation}, receive, send)


class SessionCookieMiddleware(_Middleware):
    """The session cookie of this host → scope["session_key"] (None when signed out).

    The session is read with the consumer's other connect checks, in one database call.
    """

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        session_key = parse_cookie(header(scope, b"cookie")).get(settings.SESSION_COOKIE_NAME)
        return await self.inner({**scope, "session_key": session_key or None}, receive, send)


def own_origin(scope: Scope) -> str | None:
    """The origin of the organisation's own pages, as seen by this connection (a widget's preview)."""
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    return request_origin(f"{scheme}://{header(scope, b'host')}")


def websocket_stack(inner: Any) -> Any:
    return ConnectRateLimitMiddleware(
        StreamParamsMiddleware(OriginCheckMiddleware(TenantMiddleware(SessionCookieMiddleware(inner))))
    )
