"""A local Polygon (Massive) stocks websocket and snapshot endpoint, for the adapter's tests.

It speaks the published protocol on 127.0.0.1 (a free port): `connected` on connect, `auth` answered
by `auth_success` or `auth_failed`, `subscribe`/`unsubscribe` of comma-separated topics answered by
one status per topic ("subscribed to: T.AAPL", or an error that does not name the topic, as the real
server's "not authorized" does), and frames that are JSON arrays of events. A test switches on the
failures: a refused key, `max_connections` (before or after authenticating), symbols or data types
the plan does not include, a subscription limit, a dropped connection, a malformed frame. The same
port answers plain HTTP GETs of the REST snapshot (`/v2/snapshot/locale/us/markets/stocks/tickers`) and
of minute aggregates (`/v2/aggs/ticker/{T}/range/1/minute/{from}/{to}`, from and to in epoch ms, as
documented: `{"ticker","status":"OK","queryCount","resultsCount","adjusted","results":[{"t","o","h","l",
"c","v","vw","n"}],"request_id","next_url"?}`, `results` left out when there are none, `limit` results an
answer and a `next_url` with a `cursor` for the rest).
"""

import asyncio
import contextlib
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .minute_bars import Bar, within

SNAPSHOT_PATH = "/v2/snapshot/locale/us/markets/stocks/tickers"
AGGS_PATH = re.compile(r"/v2/aggs/ticker/(?P<ticker>[^/]+)/range/1/minute/(?P<start>\d+)/(?P<end>\d+)")
NOT_AUTHORIZED = "not authorized"
SUBSCRIPTION_LIMIT = "Subscription limit reached for feed. Please remove some subscriptions and try again."
MAX_CONNECTIONS = "Maximum number of websocket connections exceeded. You have reached the connection limit."


def status(state: str, message: str) -> dict[str, str]:
    return {"ev": "status", "status": state, "message": message}


@dataclass(eq=False)
class Session:
    ws: ServerConnection
    authenticated: bool = False
    topics: set[str] = field(default_factory=set)


class FakePolygon:
    def __init__(self, *, key: str = "test-key") -> None:
        self.key = key
        # Failures a test switches on:
        self.fail_auth = False
        self.refuse_connections = 0  # the next N connections are told max_connections and closed
        self.refuse_after_auth = False  # … after auth_success and the first subscribe (as seen live), not instead
        self.not_entitled: set[str] = set()  # symbols whose topics are answered "not authorized"
        self.not_entitled_kinds: set[str] = set()  # data types ("Q") answered "not authorized" for every symbol
        self.topic_limit: int | None = None  # topics per connection; a subscribe crossing it is refused whole
        self.previous_closes: dict[str, float] = {}
        self.snapshot_status = HTTPStatus.OK
        self.snapshot_delay = 0.0  # seconds before the snapshot answers
        self.bars: dict[str, list[Bar]] = {}  # served as minute aggregates
        self.aggs_status = HTTPStatus.OK  # anything else: that status with an error body
        self.aggs_raw: bytes | None = None  # answered as is with 200 (a malformed answer)
        self.aggs_requests: list[tuple[str, dict[str, list[str]], str | None]] = []  # (path, query, Authorization)
        # What happened:
        self.connections: list[float] = []  # monotonic time of each connection
        self.auths: list[str] = []  # keys offered
        self.received: list[dict[str, Any]] = []  # every client message after auth
        self.snapshot_requests: list[tuple[dict[str, list[str]], str | None]] = []  # (query, Authorization)
        self.sessions: list[Session] = []
        self._changed = asyncio.Condition()
        self._server: Server | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await serve(self._handler, "127.0.0.1", 0, process_request=self._http)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stocks"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- for tests -----------------------------------------------------------------------------------
    def subscribed(self) -> set[str]:
        """Topics subscribed on the authenticated connections."""
        return {topic for s in self.sessions if s.authenticated for topic in s.topics}

    async def wait_until(self, condition: Callable[[], bool], seconds: float = 5.0) -> None:
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(condition)

    async def send(self, events: list[dict[str, Any]], *, every_symbol: bool = False) -> int:
        """One frame per authenticated connection, with the events on topics it subscribed to (or all of
        them with `every_symbol`, as if unsubscribing were still on its way); returns the frames sent."""
        sent = 0
        for session in [s for s in self.sessions if s.authenticated]:
            frame = [e for e in events if every_symbol or f"{e['ev']}.{e['sym']}" in session.topics]
            if frame:
                with contextlib.suppress(ConnectionClosed):
                    await session.ws.send(orjson.dumps(frame).decode())
                    sent += 1
        return sent

    async def send_raw(self, text: str) -> None:
        for session in [s for s in self.sessions if s.authenticated]:
            with contextlib.suppress(ConnectionClosed):
                await session.ws.send(text)

    def drop(self) -> None:
        """Cut every connection as a network failure would: no closing handshake."""
        for session in self.sessions:
            session.ws.transport.abort()

    # -- the websocket ---------------------------------------------------------------------------------
    async def _handler(self, ws: ServerConnection) -> None:
        session = Session(ws)
        refuse = self.refuse_connections > 0
        self.refuse_connections -= refuse
        self.connections.append(time.monotonic())
        self.sessions.append(session)
        await self._notify()
        try:
            await self._send(ws, [status("connected", "Connected Successfully")])
            async for raw in ws:
                try:
                    message = orjson.loads(raw)
                    action, params = message["action"], str(message.get("params", ""))
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    await self._send(ws, [status("error", "Invalid JSON")])
                    continue
                if action == "auth":
                    self.auths.append(params)
                    if refuse and not self.refuse_after_auth:
                        await self._refuse(ws)
                        return
                    if self.fail_auth or params != self.key:
                        await self._send(ws, [status("auth_failed", "authentication failed")])
                        await ws.close(1008, "authentication failed")
                        return
                    session.authenticated = True
                    await self._send(ws, [status("auth_success", "authenticated")])
                elif not session.authenticated:
                    await self._send(ws, [status("auth_required", "Please authenticate first.")])
                elif action == "subscribe":
                    await self._subscribe(session, message, params)
                    if refuse:  # the live sequence: auth_success, subscribed, then max_connections
                        await self._refuse(ws)
                        return
                elif action == "unsubscribe":
                    topics = [t for t in params.split(",") if t]
                    self.received.append(message)
                    session.topics.difference_update(topics)
                    await self._notify()
                    await self._send(ws, [status("success", f"unsubscribed to: {t}") for t in topics])
        except ConnectionClosed:
            pass
        finally:
            self.sessions.remove(session)
            await self._notify()

    async def _subscribe(self, session: Session, message: dict[str, Any], params: str) -> None:
        topics = [t for t in params.split(",") if t]
        if self.topic_limit is not None and len(session.topics | set(topics)) > self.topic_limit:
            self.received.append(message)
            await self._notify()
            await self._send(session.ws, [status("error", SUBSCRIPTION_LIMIT)])  # the whole frame refused
            return
        replies, granted = [], []
        for topic in topics:
            kind, _, symbol = topic.partition(".")
            if symbol in self.not_entitled or kind in self.not_entitled_kinds:
                replies.append(status("error", NOT_AUTHORIZED))  # names no topic, as Polygon's does not
            else:
                granted.append(topic)
                replies.append(status("success", f"subscribed to: {topic}"))
        self.received.append(message)
        session.topics.update(granted)
        await self._notify()
        await self._send(session.ws, replies)

    async def _refuse(self, ws: ServerConnection) -> None:
        await self._send(ws, [status("max_connections", MAX_CONNECTIONS)])
        await ws.close(1008, "max_connections")

    @staticmethod
    async def _send(ws: ServerConnection, events: list[dict[str, Any]]) -> None:
        await ws.send(orjson.dumps(events).decode())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- the REST snapshot ---------------------------------------------------------------------------
    async def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urllib.parse.urlsplit(request.path)
        if url.path == "/stocks":
            return None  # the websocket handshake goes on
        if (aggs := AGGS_PATH.fullmatch(url.path)) is not None:
            return self._aggregates(connection, request, aggs)
        if url.path != SNAPSHOT_PATH:
            return self._json(connection, HTTPStatus.NOT_FOUND, {"status": "NOT_FOUND", "message": "Not found"})
        query = urllib.parse.parse_qs(url.query)
        authorization = request.headers.get("Authorization")
        self.snapshot_requests.append((query, authorization))
        await self._notify()
        await asyncio.sleep(self.snapshot_delay)
        keys = {authorization.removeprefix("Bearer ") if authorization else None, *query.get("apiKey", [])}
        if self.key not in keys:
            return self._json(connection, HTTPStatus.UNAUTHORIZED, {"status": "ERROR", "message": "Unknown API Key"})
        if self.snapshot_status != HTTPStatus.OK:
            return self._json(connection, self.snapshot_status, {"status": "ERROR", "message": "unavailable"})
        tickers = [t for value in query.get("tickers", []) for t in value.split(",") if t in self.previous_closes]
        snapshots = [
            {"ticker": t, "day": {"c": 0, "v": 0}, "prevDay": {"o": 1, "h": 1, "l": 1, "c": self.previous_closes[t]}}
            for t in tickers
        ]
        return self._json(connection, HTTPStatus.OK, {"status": "OK", "count": len(snapshots), "tickers": snapshots})

    def _aggregates(self, connection: ServerConnection, request: Request, aggs: re.Match[str]) -> Response:
        url = urllib.parse.urlsplit(request.path)
        query = urllib.parse.parse_qs(url.query)
        authorization = request.headers.get("Authorization")
        self.aggs_requests.append((url.path, query, authorization))
        if authorization != f"Bearer {self.key}":
            return self._json(connection, HTTPStatus.UNAUTHORIZED, {"status": "ERROR", "message": "Unknown API Key"})
        if self.aggs_status != HTTPStatus.OK:
            return self._json(connection, self.aggs_status, {"status": "ERROR", "message": "unavailable"})
        if self.aggs_raw is not None:
            return connection.respond(HTTPStatus.OK, self.aggs_raw.decode())
        ticker = urllib.parse.unquote(aggs["ticker"])
        bars = within(self.bars.get(ticker, []), int(aggs["start"]), int(aggs["end"]))
        offset, limit = int(query.get("cursor", ["0"])[0]), int(query.get("limit", ["5000"])[0])
        results = [{"v": b.v, "vw": b.c, "o": b.o, "c": b.c, "h": b.h, "l": b.l, "t": b.t, "n": 10}
                   for b in bars[offset : offset + limit]]  # fmt: skip
        body: dict[str, Any] = {"ticker": ticker, "queryCount": len(results), "resultsCount": len(results),
                                "adjusted": True, "status": "OK", "request_id": "fake"}  # fmt: skip
        if results:
            body["results"] = results
        if offset + limit < len(bars):
            body["next_url"] = f"{self.api_url}{url.path}?cursor={offset + limit}&limit={limit}"
        return self._json(connection, HTTPStatus.OK, body)

    @staticmethod
    def _json(connection: ServerConnection, code: HTTPStatus, body: dict[str, Any]) -> Response:
        response = connection.respond(code, "")  # a plain-text response: its headers, our JSON body
        encoded = orjson.dumps(body)
        headers = Headers(
            [(k, v) for k, v in response.headers.raw_items() if k.lower() not in ("content-type", "content-length")]
        )
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(encoded))
        return Response(response.status_code, response.reason_phrase, headers, encoded)
