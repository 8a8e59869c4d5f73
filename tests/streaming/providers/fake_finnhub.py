"""A local stand-in for Finnhub: the websocket trades stream and the REST quote endpoint, on one port.

It speaks the protocol FinnhubProvider follows (see streaming/providers/finnhub.py): the key in
`?token=`, one-symbol subscribe/unsubscribe messages, `trade` frames, `ping` keep-alives, `error`
messages. A test drives it: send trades to the subscribed connections, ping, drop the connection,
send a malformed frame, refuse the key (HTTP 401 on the upgrade, or an error message), cap the
symbols per connection as the free plan does. `GET /api/v1/quote?symbol=…` (key in the
X-Finnhub-Token header or a token= parameter) answers with `pc`, the previous close, and
`GET /api/v1/stock/candle?symbol=…&resolution=1&from=<unix s>&to=<unix s>` with the documented parallel
arrays `{"c","h","l","o","s":"ok","t","v"}` or `{"s":"no_data"}`; `candle_status=403` answers as Finnhub
does for a plan without candles.
"""

import asyncio
import contextlib
import http
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .minute_bars import Bar, within

CAP_ERROR = "Subscribing to too many symbols"
KEY_ERROR = "Invalid API key"


@dataclass(eq=False)
class FakeConnection:
    ws: ServerConnection
    subscribed: list[str] = field(default_factory=list)  # in the order subscribed


class FakeFinnhub:
    def __init__(
        self,
        *,
        token: str,
        closes: dict[str, float] | None = None,
        symbol_cap: int | None = None,
        refuse: Literal["http", "message"] = "http",
        rest_delay: float = 0.0,
    ) -> None:
        self.token = token
        self.closes = dict(closes or {})
        self.symbol_cap = symbol_cap  # None: no cap
        self.refuse = refuse  # how a bad key is refused: HTTP 401 on the upgrade, or an error message
        self.rest_delay = rest_delay
        self.connections: list[FakeConnection] = []
        self.attempts = 0  # websocket upgrades asked for, refused or not
        self.accepted = 0  # websocket connections served
        self.received: list[dict[str, Any]] = []  # every client message, across connections
        self.quote_requests: list[str] = []
        self.bars: dict[str, list[Bar]] = {}  # served as one-minute candles
        self.candle_status = http.HTTPStatus.OK  # anything else: that status with Finnhub's error body
        self.candle_raw: str | None = None  # answered as is with 200 (a malformed answer)
        self.candle_requests: list[dict[str, str]] = []
        self.rest_tokens: list[str] = []  # how each REST request carried the key: "header" or "query"
        self.rest_in_flight = 0
        self.rest_in_flight_max = 0
        self._server: Server | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await serve(self._serve, "127.0.0.1", 0, process_request=self._process_request)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    # -- what the test reads ------------------------------------------------------------------------
    @property
    def subscribed(self) -> list[str]:
        """The symbols subscribed on the open connection(s), in order."""
        return [symbol for conn in self.connections for symbol in conn.subscribed]

    def subscribes(self) -> list[str]:
        """Every symbol a subscribe message asked for, across connections."""
        return [m["symbol"] for m in self.received if m.get("type") == "subscribe"]

    def unsubscribes(self) -> list[str]:
        return [m["symbol"] for m in self.received if m.get("type") == "unsubscribe"]

    # -- what the test makes it do ----------------------------------------------------------------
    async def trade(
        self, symbol: str, price: float, volume: int = 100, ts: int | None = None, *, force: bool = False
    ) -> None:
        """One trade frame, to every connection subscribed to the symbol (every connection if `force`)."""
        trade = {"s": symbol, "p": price, "t": ts if ts is not None else time.time_ns() // 1_000_000, "v": volume}
        await self.send_frame(
            {"type": "trade", "data": [{**trade, "c": ["1", "12"]}]}, symbol=None if force else symbol
        )

    async def trades(self, trades: list[dict[str, Any]]) -> None:
        """One trade frame carrying these items as they are (to every connection)."""
        await self.send_frame({"type": "trade", "data": trades})

    async def ping(self) -> None:
        await self.send_frame({"type": "ping"})

    async def error(self, msg: str) -> None:
        await self.send_frame({"type": "error", "msg": msg})

    async def send_frame(self, frame: dict[str, Any], *, symbol: str | None = None) -> None:
        await self.send_raw(json.dumps(frame), symbol=symbol)

    async def send_raw(self, text: str, *, symbol: str | None = None) -> None:
        for conn in list(self.connections):
            if symbol is None or symbol in conn.subscribed:
                with contextlib.suppress(ConnectionClosed):
                    await conn.ws.send(text)

    def drop(self) -> None:
        """Cut every connection without a closing handshake, as a network failure would."""
        for conn in list(self.connections):
            conn.ws.transport.abort()

    # -- the server --------------------------------------------------------------------------------
    def _token_ok(self, request: Request) -> tuple[bool, str]:
        query = parse_qs(urlsplit(request.path).query)
        if request.headers.get("X-Finnhub-Token") is not None:
            return request.headers["X-Finnhub-Token"] == self.token, "header"
        return query.get("token", [""])[0] == self.token, "query"

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path.startswith("/api/v1/"):
            return await self._rest(connection, request, path)
        self.attempts += 1
        token_ok, _ = self._token_ok(request)
        if not token_ok and self.refuse == "http":
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        return None  # the websocket upgrade goes ahead

    async def _rest(self, connection: ServerConnection, request: Request, path: str) -> Response:
        self.rest_in_flight += 1
        self.rest_in_flight_max = max(self.rest_in_flight_max, self.rest_in_flight)
        try:
            if self.rest_delay:
                await asyncio.sleep(self.rest_delay)
            token_ok, carried = self._token_ok(request)
            self.rest_tokens.append(carried)
            if not token_ok:
                return _json(connection, http.HTTPStatus.UNAUTHORIZED, {"error": KEY_ERROR})
            if path == "/api/v1/stock/candle":
                return self._candles(connection, request)
            if path != "/api/v1/quote":
                return _json(connection, http.HTTPStatus.NOT_FOUND, {"error": "Not found"})
            symbol = parse_qs(urlsplit(request.path).query).get("symbol", [""])[0]
            self.quote_requests.append(symbol)
            close = self.closes.get(symbol)
            if close is None:  # Finnhub answers an unknown symbol with zeros
                body: dict[str, Any] = {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}
            else:
                body = {"c": close, "d": 0, "dp": 0, "h": close, "l": close, "o": close, "pc": close, "t": 1}
            return _json(connection, http.HTTPStatus.OK, body)
        finally:
            self.rest_in_flight -= 1

    def _candles(self, connection: ServerConnection, request: Request) -> Response:
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}
        self.candle_requests.append(query)
        if self.candle_status != http.HTTPStatus.OK:
            return _json(connection, self.candle_status, {"error": "You don't have access to this resource."})
        if self.candle_raw is not None:
            return connection.respond(http.HTTPStatus.OK, self.candle_raw)
        if query.get("resolution") != "1":
            return _json(connection, http.HTTPStatus.UNPROCESSABLE_ENTITY, {"error": "this fake serves resolution 1"})
        bars = within(self.bars.get(query.get("symbol", ""), []), int(query["from"]) * 1000, int(query["to"]) * 1000)
        if not bars:
            return _json(connection, http.HTTPStatus.OK, {"s": "no_data"})
        body = {"c": [b.c for b in bars], "h": [b.h for b in bars], "l": [b.l for b in bars], "o": [b.o for b in bars],
                "s": "ok", "t": [b.t // 1000 for b in bars], "v": [b.v for b in bars]}  # fmt: skip
        return _json(connection, http.HTTPStatus.OK, body)

    async def _serve(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        if not self._token_ok(ws.request)[0]:  # refuse == "message"
            await ws.send(json.dumps({"type": "error", "msg": KEY_ERROR}))
            await ws.close(1008, "invalid token")
            return
        self.accepted += 1
        conn = FakeConnection(ws)
        self.connections.append(conn)
        try:
            async for raw in ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                self.received.append(message)
                await self._on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            self.connections.remove(conn)

    async def _on_message(self, conn: FakeConnection, message: dict[str, Any]) -> None:
        symbol = message.get("symbol")
        if not isinstance(symbol, str):
            return
        if message.get("type") == "subscribe" and symbol not in conn.subscribed:
            if self.symbol_cap is not None and len(conn.subscribed) >= self.symbol_cap:
                await conn.ws.send(json.dumps({"type": "error", "msg": CAP_ERROR}))
            else:
                conn.subscribed.append(symbol)
        elif message.get("type") == "unsubscribe" and symbol in conn.subscribed:
            conn.subscribed.remove(symbol)


def _json(connection: ServerConnection, status: http.HTTPStatus, body: dict[str, Any]) -> Response:
    response = connection.respond(status, json.dumps(body))
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response
