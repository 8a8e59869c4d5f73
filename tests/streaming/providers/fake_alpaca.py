"""A local Alpaca market data v2 server, speaking the protocol as Alpaca documents it, for the adapter's tests.

One port on 127.0.0.1 serves the stream at `/v2/<feed>` (websocket) and the REST snapshots endpoint
`GET /v2/stocks/snapshots` and historical bars `GET /v2/stocks/bars` (plain HTTP, answered from the
websocket server's process_request hook; bars as documented: `{"bars":{symbol:[{"t","o","h","l","c","v",
"n","vw"}]},"next_page_token"}`, `limit` bars a page across symbols, `page_token` for the next).
The test drives it: `trade()` and `quote()` send data to the sessions subscribed to the symbol, and
switches make it refuse the key (402), the connection (406) or the feed (409), cap the symbols (405
beyond `symbol_limit`, refusing the whole request as Alpaca does), drop connections or send junk.
"""

import asyncio
import itertools
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .minute_bars import Bar, within

KEY_ID = "PKTEST0123456789"
SECRET_KEY = "test-secret-0123456789"
_SYMBOL = re.compile(r"[A-Z][A-Z0-9.]{0,15}|\*")


def rfc3339(ns: int) -> str:
    """Alpaca's timestamp format: UTC with nanoseconds, e.g. 2024-07-24T07:56:53.639713735Z."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"


def timestamp(value: str) -> int:
    """Epoch ms of an RFC-3339 time (as Alpaca accepts for start and end)."""
    return int(datetime.fromisoformat(value).timestamp() * 1000)


def _symbols(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(s, str) and _SYMBOL.fullmatch(s) for s in value)


def dumps(messages: list[dict[str, Any]]) -> str:
    return orjson.dumps(messages).decode()


@dataclass
class Session:
    """One websocket connection to the fake."""

    ws: ServerConnection
    authenticated: bool = False
    trades: set[str] = field(default_factory=set)
    quotes: set[str] = field(default_factory=set)
    received: list[Any] = field(default_factory=list)  # what the client sent, decoded, in order
    closed: bool = False

    def requests(self, action: str) -> list[dict[str, Any]]:
        return [m for m in self.received if isinstance(m, dict) and m.get("action") == action]


@dataclass
class BarsRequest:
    symbols: list[str]
    query: dict[str, str]  # every other parameter (timeframe, start, end, limit, feed, sort, page_token)
    key_id: str | None


@dataclass
class SnapshotsRequest:
    symbols: list[str]
    feed: str | None
    key_id: str | None
    secret_key: str | None


class FakeAlpaca:
    """Start with `async with FakeAlpaca() as fake:`; `stream_url` and `data_url` point at it."""

    def __init__(self, *, feed: str = "iex") -> None:
        self.feed = feed
        self.refuse_auth = False  # 402 auth failed
        self.refuse_connection = False  # 406 connection limit exceeded (after the auth message)
        self.refuse_feed = False  # 409 insufficient subscription (after the auth message)
        self.symbol_limit: int | None = None  # 405 for a subscribe that would hold more symbols
        self.auth_timeout = 10.0  # 404 auth timeout
        self.closes: dict[str, float] = {}  # prevDailyBar.c served by the snapshots endpoint
        self.sessions: list[Session] = []
        self.snapshots_requests: list[SnapshotsRequest] = []
        self.bars: dict[str, list[Bar]] = {}  # served by the bars endpoint
        self.bars_status = 200  # anything else: that status with an error body
        self.bars_raw: bytes | None = None  # answered as is with 200 (a malformed answer)
        self.bars_requests: list[BarsRequest] = []
        self._server: Server | None = None
        self._trade_ids = itertools.count(1)

    async def __aenter__(self) -> "FakeAlpaca":
        self._server = await serve(self._session, "127.0.0.1", 0, process_request=self._http)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v2"

    @property
    def data_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        return len(self.sessions)

    def live(self) -> list[Session]:
        return [s for s in self.sessions if s.authenticated and not s.closed]

    # -- what the test drives ---------------------------------------------------------------------------
    async def trade(self, symbol: str, price: float, size: int = 100, ns: int | None = None) -> int:
        """A trade to the sessions subscribed to the symbol's trades; how many got it."""
        message = {"T": "t", "S": symbol, "i": next(self._trade_ids), "x": "V", "p": price, "s": size,
                   "c": ["@"], "t": rfc3339(ns or time.time_ns()), "z": "C"}  # fmt: skip
        return await self._publish([s for s in self.live() if symbol in s.trades], [message])

    async def quote(self, symbol: str, bid: float, ask: float, ns: int | None = None) -> int:
        """A bid/ask update to the sessions subscribed to the symbol's quotes; how many got it."""
        message = {"T": "q", "S": symbol, "bx": "V", "bp": bid, "bs": 3, "ax": "V", "ap": ask, "as": 2,
                   "c": ["R"], "t": rfc3339(ns or time.time_ns()), "z": "C"}  # fmt: skip
        return await self._publish([s for s in self.live() if symbol in s.quotes], [message])

    async def send_raw(self, frame: str | bytes) -> int:
        """Any frame, as is, to every authenticated session."""
        sessions = self.live()
        for session in sessions:
            await session.ws.send(frame)
        return len(sessions)

    def drop(self) -> int:
        """Cut every open connection without a closing handshake (a network failure)."""
        sessions = [s for s in self.sessions if not s.closed]
        for session in sessions:
            session.closed = True
            session.ws.transport.abort()
        return len(sessions)

    # -- the stream ---------------------------------------------------------------------------------------
    async def _publish(self, sessions: list[Session], messages: list[dict[str, Any]]) -> int:
        for session in sessions:
            await session.ws.send(dumps(messages))
        return len(sessions)

    async def _session(self, ws: ServerConnection) -> None:
        session = Session(ws)
        self.sessions.append(session)
        try:
            await ws.send(dumps([{"T": "success", "msg": "connected"}]))
            if await self._authenticate(session):
                async for raw in ws:
                    await self._request(session, raw)
        except ConnectionClosed:
            pass
        finally:
            session.closed = True

    async def _authenticate(self, session: Session) -> bool:
        ws = session.ws
        try:
            async with asyncio.timeout(self.auth_timeout):
                while True:
                    message = self._decode(session, await ws.recv())
                    if not isinstance(message, dict) or "action" not in message:
                        await self._error(ws, 400, "invalid syntax")
                    elif message["action"] != "auth":
                        await self._error(ws, 401, "not authenticated")
                    elif self.refuse_auth or (message.get("key"), message.get("secret")) != (KEY_ID, SECRET_KEY):
                        await self._error(ws, 402, "auth failed")
                    elif self.refuse_connection:
                        await self._error(ws, 406, "connection limit exceeded")
                        await ws.close()
                        return False
                    elif self.refuse_feed:
                        await self._error(ws, 409, "insufficient subscription")
                        await ws.close()
                        return False
                    else:
                        session.authenticated = True
                        await ws.send(dumps([{"T": "success", "msg": "authenticated"}]))
                        return True
        except TimeoutError:
            await self._error(ws, 404, "auth timeout")
            await ws.close()
            return False

    async def _request(self, session: Session, raw: str | bytes) -> None:
        ws = session.ws
        message = self._decode(session, raw)
        if not isinstance(message, dict) or message.get("action") not in ("auth", "subscribe", "unsubscribe"):
            await self._error(ws, 400, "invalid syntax")
            return
        action = message["action"]
        if action == "auth":
            await self._error(ws, 403, "already authenticated")
            return
        channels = {k: v for k, v in message.items() if k != "action"}
        if not channels or not all(k in ("trades", "quotes") and _symbols(v) for k, v in channels.items()):
            await self._error(ws, 400, "invalid syntax")  # also for a symbol in an invalid format
            return
        trades, quotes = set(channels.get("trades", [])), set(channels.get("quotes", []))
        if action == "subscribe":
            held = (session.trades | trades) | (session.quotes | quotes)
            if self.symbol_limit is not None and len(held - {"*"}) > self.symbol_limit:
                await self._error(ws, 405, "symbol limit exceeded")  # the subscription stays as it was
                return
            session.trades |= trades
            session.quotes |= quotes
        else:
            session.trades -= trades
            session.quotes -= quotes
        listed = sorted(session.trades)
        await ws.send(dumps([{
            "T": "subscription", "trades": listed, "quotes": sorted(session.quotes), "bars": [], "updatedBars": [],
            "dailyBars": [], "statuses": [], "lulds": [], "corrections": listed, "cancelErrors": listed,
        }]))  # fmt: skip

    @staticmethod
    def _decode(session: Session, raw: str | bytes) -> Any:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            message = raw
        session.received.append(message)
        return message

    @staticmethod
    async def _error(ws: ServerConnection, code: int, text: str) -> None:
        await ws.send(dumps([{"T": "error", "code": code, "msg": text}]))

    # -- REST -----------------------------------------------------------------------------------------------
    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == f"/v2/{self.feed}":
            return None  # the websocket handshake goes on
        if url.path == "/v2/stocks/bars":
            return self._bars(connection, request)
        if url.path != "/v2/stocks/snapshots":
            return connection.respond(404, "Not Found\n")
        query = parse_qs(url.query)
        symbols = query.get("symbols", [""])[0].split(",")
        key_id, secret_key = request.headers.get("APCA-API-KEY-ID"), request.headers.get("APCA-API-SECRET-KEY")
        self.snapshots_requests.append(SnapshotsRequest(symbols, query.get("feed", [None])[0], key_id, secret_key))
        if (key_id, secret_key) != (KEY_ID, SECRET_KEY):
            return self._json(connection, 401, {"message": "unauthorized."})
        body = {symbol: self._snapshot(symbol, self.closes[symbol]) for symbol in symbols if symbol in self.closes}
        return self._json(connection, 200, body)

    def _bars(self, connection: ServerConnection, request: Request) -> Response:
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}
        symbols = query.pop("symbols", "").split(",")
        key_id, secret_key = request.headers.get("APCA-API-KEY-ID"), request.headers.get("APCA-API-SECRET-KEY")
        self.bars_requests.append(BarsRequest(symbols, query, key_id))
        if (key_id, secret_key) != (KEY_ID, SECRET_KEY):
            return self._json(connection, 401, {"message": "unauthorized."})
        if self.bars_status != 200:
            return self._json(connection, self.bars_status, {"code": 42910000, "message": "too many requests."})
        if self.bars_raw is not None:
            return connection.respond(200, self.bars_raw.decode())
        if query.get("timeframe") != "1Min" or query.get("sort", "asc") != "asc":
            return self._json(connection, 422, {"message": "this fake serves 1Min bars in ascending order"})
        start, end = timestamp(query["start"]), timestamp(query["end"])
        # Every matching bar, symbol by symbol in the order asked, then cut into pages of `limit`.
        rows = [(s, bar) for s in symbols for bar in within(self.bars.get(s, []), start, end)]
        offset, limit = int(query.get("page_token") or 0), int(query.get("limit", 1000))
        page: dict[str, list[dict[str, Any]]] = {}
        for symbol, bar in rows[offset : offset + limit]:
            page.setdefault(symbol, []).append({"t": rfc3339(bar.t * 1_000_000), "o": bar.o, "h": bar.h, "l": bar.l,
                                                "c": bar.c, "v": bar.v, "n": 10, "vw": bar.c})  # fmt: skip
        token = str(offset + limit) if offset + limit < len(rows) else None
        return self._json(connection, 200, {"bars": page, "next_page_token": token})

    @staticmethod
    def _snapshot(symbol: str, close: float) -> dict[str, Any]:
        return {
            "latestTrade": {"t": rfc3339(time.time_ns()), "x": "V", "p": close, "s": 100, "c": ["@"], "i": 1, "z": "C"},
            "prevDailyBar": {
                "t": "2024-07-23T04:00:00Z",
                "o": close,
                "h": close,
                "l": close,
                "c": close,
                "v": 1000,
                "n": 10,
                "vw": close,
            },
        }

    @staticmethod
    def _json(connection: ServerConnection, status: int, body: Any) -> Response:
        response = connection.respond(status, orjson.dumps(body).decode())
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        return response
