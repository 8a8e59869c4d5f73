"""The websocket stack in front of the consumer: origin check, tenant from Host, session cookie.

A refusal here still follows SPEC: the socket is accepted, sent an `error` message, then closed
with the matching code (a refusal before `accept` would only be an HTTP 403 to the browser).
"""

from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from channels.db import database_sync_to_async
from django.conf import settings
from django.http.cookie import parse_cookie

from .protocol import ORIGIN_FORBIDDEN, UNKNOWN_TENANT, Refusal
from .selectors import organisation_ref_cached, organisation_ref_for_host

Scope = dict[str, Any]


async def websocket_refuse(receive: Any, send: Any, refusal: Refusal) -> None:
    """Accept, say why, close with the refusal's code."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
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


def query_params(scope: Scope) -> dict[str, str]:
    parsed = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


class _Middleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner


class OriginCheckMiddleware(_Middleware):
    """Browsers send Origin: a signed-in stream must come from a page of the same host.

    Widget connections (`?widget=`) are checked against their own allowed origins in the consumer.
    """

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        origin = header(scope, b"origin")
        if origin and "widget" not in query_params(scope):
            origin_host = (urlsplit(origin).hostname or "").lower()
            if origin_host != hostname_of(scope):
                return await websocket_refuse(receive, send, ORIGIN_FORBIDDEN)
        return await self.inner(scope, receive, send)


class TenantMiddleware(_Middleware):
    """Resolve the organisation from the Host header into scope["organisation"]; 4404 when none."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        hostname = hostname_of(scope)
        found, organisation = organisation_ref_cached(hostname)
        if not found:
            organisation = await database_sync_to_async(organisation_ref_for_host, thread_sensitive=False)(hostname)
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


def websocket_stack(inner: Any) -> Any:
    return OriginCheckMiddleware(TenantMiddleware(SessionCookieMiddleware(inner)))
