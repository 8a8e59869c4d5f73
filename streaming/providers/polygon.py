"""Polygon's (now Massive's) stocks websocket: trades (T) and NBBO quotes (Q) as SPEC Quotes.

The wire protocol (Massive's published websocket spec, and its Python client's websocket module):
every frame is a JSON array of events. On connect the server sends
`{"ev":"status","status":"connected","message":"Connected Successfully"}`; the client answers
`{"action":"auth","params":"<key>"}` and gets `auth_success`, `auth_failed` or `auth_timeout`; then
`{"action":"subscribe","params":"T.AAPL,Q.AAPL"}` (and `unsubscribe` alike) is answered by one status
per topic: `{"status":"success","message":"subscribed to: T.AAPL"}`, or `{"status":"error",...}`
when refused: "not authorized" for a data type the plan lacks, "Subscription limit reached for
feed. ..." past the connection's cap. Those errors do not name the topic, so every topic is sent in
a subscribe of its own and each error is matched to the oldest topic still awaiting an answer (the
server answers in order; a frame that would cross the limit is refused whole, which with one topic
per frame is still one answer per topic). A connection beyond the account's cap is told
`max_connections` (before or after authenticating) and then closed; `force_disconnect` and
`slow_consumer` end a connection too.

Trades `{"ev":"T","sym":…,"p":price,"s":size,"t":ms}` and quotes `{"ev":"Q","sym":…,"bp":…,"ap":…,"t":ms}`
go through the QuoteBook; the previous close comes from the REST snapshot's `prevDay.c`.

History (for delayed plans, see vendor.py): one-minute aggregates per ticker from
`GET /v2/aggs/ticker/{T}/range/1/minute/{from ms}/{to ms}?adjusted=true&sort=asc&limit=50000`, answered
`{"status":"OK"|"DELAYED","results":[{"t" ms,"o","h","l","c","v",…}],"next_url"?}` (no `results` when there
are none); a `next_url` is followed, with the key in the header, only on the API's own host.
"""

import asyncio
import re
from collections import deque
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson
from django.conf import settings
from websockets.asyncio.client import ClientConnection

from streaming.quotes import Quote

from .history import Bar, minute_bar
from .vendor import VendorError, VendorStreamProvider, each_symbol

TOPICS = ("T", "Q")  # trades, then quotes (NBBO)
SNAPSHOT_PATH = "/v2/snapshot/locale/us/markets/stocks/tickers"
SNAPSHOT_TICKERS_PER_REQUEST = 200  # keeps the URL short
REST_TIMEOUT_SECONDS = 5.0
AGGS_LIMIT = "50000"  # bars per answer, Polygon's maximum: a day of minutes is 960 at most (extended hours)
AGGS_PAGES_MAX = 20
# A refused topic is sometimes named in the message; the symbol may contain dots (BRK.B).
_TOPIC_IN_TEXT = re.compile(r"(?<![A-Za-z0-9])([TQ])\.([A-Za-z0-9][A-Za-z0-9.:/\-]*)")
_DISCONNECTS = {
    "max_connections": (
        "Polygon refused the connection: the maximum number of websocket connections for POLYGON_API_KEY "
        "is reached (does another process stream with the same key?); retrying with backoff"
    ),
    "force_disconnect": "Polygon ended the connection (force_disconnect); reconnecting",
    "slow_consumer": "Polygon dropped the connection because we read too slowly (slow_consumer); reconnecting",
    "auth_timeout": "Polygon timed the authentication out (auth_timeout); reconnecting",
    "auth_required": "Polygon says the connection is not authenticated (auth_required); reconnecting",
}


def _number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (strings, booleans, null)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def refusal_reason(message: str) -> str:
    """The unserved reason code for a refused subscription, from Polygon's words."""
    text = message.lower()
    if "limit" in text:
        return "symbol_limit"
    if "invalid" in text or "unknown" in text:
        return "unknown_symbol"
    return "not_entitled"  # "not authorized", "your plan doesn't include…", anything else refused


class PolygonProvider(VendorStreamProvider):
    """Polygon's (Massive's) real-time stocks websocket; see the module docstring for the protocol."""

    name = "polygon"
    display_name = "Polygon"
    # Symbols streamed on one connection at most (each is two topics, T and Q); the rest are reported
    # unserved ("symbol_limit") without being sent, and take a slot that frees up. None: no cap.
    SYMBOL_CAP: int | None = None
    HISTORY_CONCURRENCY = 4  # aggregates requests in flight (one ticker each)

    def __init__(
        self, *, api_key: str, url: str = "wss://socket.polygon.io/stocks", api_url: str = "https://api.polygon.io"
    ) -> None:
        super().__init__(url=url)
        self.api_key = api_key
        self.api_url = api_url.rstrip("/")
        # Per connection (reset once authenticated):
        self._sent: set[str] = set()  # symbols whose topics were sent
        self._capped: set[str] = set()  # wanted symbols held back by SYMBOL_CAP
        self._pending: deque[str] = deque()  # topics sent and not answered yet, oldest first
        self._refused: dict[str, dict[str, str]] = {}  # symbol -> {topic kind: reason}

    @classmethod
    def from_settings(cls) -> "PolygonProvider":
        api_key = settings.POLYGON_API_KEY.strip()
        if not api_key:
            raise ValueError("The Polygon provider needs an API key: set POLYGON_API_KEY.")
        return cls(api_key=api_key, url=settings.POLYGON_STREAM_URL, api_url=settings.POLYGON_API_URL)

    # -- authentication ------------------------------------------------------------------------------
    async def authenticate(self, ws: ClientConnection) -> None:
        auth_sent = False
        try:
            async with asyncio.timeout(self.OPEN_TIMEOUT_SECONDS):
                while True:
                    for event in self._status_events(await ws.recv()):
                        status, message = str(event.get("status", "")), str(event.get("message", ""))
                        if status == "auth_success" or (status == "success" and message == "authenticated"):
                            self._connection_reset()
                            return
                        self._auth_refusal(status, message)
                        if not auth_sent and status in ("connected", "success"):
                            await ws.send(orjson.dumps({"action": "auth", "params": self.api_key}).decode())
                            auth_sent = True
        except TimeoutError:
            raise VendorError(
                f"Polygon did not confirm authentication within {self.OPEN_TIMEOUT_SECONDS:g} s; reconnecting"
            ) from None

    def _auth_refusal(self, status: str, message: str) -> None:
        """Raise the VendorError that a status ending the connection (or refusing the key) means, if any."""
        if status == "auth_failed" or (status == "error" and any(w in message.lower() for w in ("auth", "key"))):
            raise VendorError(
                f"Polygon refused the key in POLYGON_API_KEY ({status}: {message or 'no reason given'}). "
                "Check POLYGON_API_KEY and that its plan includes stocks websocket access.",
                fatal=True,
            )
        if status in _DISCONNECTS:
            raise VendorError(f"{_DISCONNECTS[status]} ({message})" if message else _DISCONNECTS[status])
        if status == "error":
            raise VendorError(f"Polygon refused the connection: {message or 'no reason given'}")

    @staticmethod
    def _status_events(raw: str | bytes) -> list[dict[str, Any]]:
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return []
        events = decoded if isinstance(decoded, list) else [decoded]
        return [e for e in events if isinstance(e, dict) and e.get("ev") == "status"]

    def _connection_reset(self) -> None:
        self._sent, self._capped, self._pending, self._refused = set(), set(), deque(), {}

    # -- subscriptions ---------------------------------------------------------------------------------
    def subscribe_messages(self, symbols: list[str]) -> list[dict[str, Any]]:
        held_back = self.status().unserved
        # After a reconnect the symbols that were streaming keep their slots ahead of those held back.
        ordered = sorted(symbols, key=lambda s: (held_back.get(s) == "symbol_limit", s))
        send, capped = [], []
        for symbol in ordered:
            if symbol in self._sent:
                continue
            if self.SYMBOL_CAP is not None and len(self._sent) >= self.SYMBOL_CAP:
                self._capped.add(symbol)
                capped.append(symbol)
                continue
            self._sent.add(symbol)
            send.append(symbol)
        self.mark_unserved(capped, "symbol_limit")
        return self._subscribe_topics(send)

    def _subscribe_topics(self, symbols: list[str]) -> list[dict[str, Any]]:
        # One topic per message, so that each answer (which may not name its topic) is matched to it.
        topics = [f"{kind}.{symbol}" for symbol in symbols for kind in TOPICS]
        self._pending.extend(topics)
        return [{"action": "subscribe", "params": topic} for topic in topics]

    def unsubscribe_messages(self, symbols: list[str]) -> list[dict[str, Any]]:
        on_socket = [s for s in symbols if s in self._sent]
        self._sent.difference_update(symbols)
        self._capped.difference_update(symbols)
        for symbol in symbols:
            self._refused.pop(symbol, None)
        messages: list[dict[str, Any]] = []
        if on_socket:
            topics = ",".join(f"{kind}.{symbol}" for symbol in on_socket for kind in TOPICS)
            messages.append({"action": "unsubscribe", "params": topics})
        if self._socket is not None and self._capped:  # freed slots go to the symbols held back
            room = len(self._capped) if self.SYMBOL_CAP is None else max(self.SYMBOL_CAP - len(self._sent), 0)
            promoted = sorted(self._capped)[:room]
            self._capped.difference_update(promoted)
            self._sent.update(promoted)
            messages += self._subscribe_topics(promoted)  # marked served when Polygon confirms them
        return messages

    # -- frames --------------------------------------------------------------------------------------
    def handle(self, message: Any) -> list[Quote]:
        if not isinstance(message, list):
            message = [message]
        wanted = self._wanted
        quotes: list[Quote] = []
        for event in message:
            if not isinstance(event, dict):
                continue
            kind = event.get("ev")
            if kind == "status":
                self._on_status(str(event.get("status", "")), str(event.get("message", "")))
                continue
            symbol = event.get("sym")
            if kind not in TOPICS or not isinstance(symbol, str) or symbol not in wanted:
                continue  # another channel, or a symbol no longer wanted (in flight when unsubscribed)
            ts = _number(event.get("t"))
            if ts is None:
                self._warn(f"a {kind} event from Polygon without a timestamp (skipped): {event!r}")
                continue
            if kind == "T":
                price, size = _number(event.get("p")), event.get("s", 0)
                if price is None or not isinstance(size, int | float) or isinstance(size, bool):
                    self._warn(f"a trade from Polygon that could not be read (skipped): {event!r}")
                    continue
                quote = self.book.trade(symbol, price, int(size), int(ts))
            else:
                bid, ask = _number(event.get("bp", 0)), _number(event.get("ap", 0))
                if bid is None or ask is None:
                    self._warn(f"a quote from Polygon that could not be read (skipped): {event!r}")
                    continue
                quote = self.book.bid_ask(symbol, bid, ask, int(ts))
            if quote is not None:
                quotes.append(quote)
        return quotes

    def _on_status(self, status: str, message: str) -> None:
        if status == "success":
            if message.startswith("subscribed to:"):
                for topic in message.removeprefix("subscribed to:").split(","):
                    self._answered(topic.strip(), None)
            return
        if status == "error":
            named = [f"{kind}.{symbol}" for kind, symbol in _TOPIC_IN_TEXT.findall(message)]
            named = [topic for topic in named if topic in self._pending]
            topics = named or ([self._pending[0]] if self._pending else [])
            if not topics:
                self._warn(f"an error from Polygon not matched to a subscription: {message}")
            for topic in topics:
                self._answered(topic, refusal_reason(message), message)
            return
        if status in ("auth_failed", *_DISCONNECTS):
            self._auth_refusal(status, message)

    def _answered(self, topic: str, reason: str | None, message: str = "") -> None:
        """Polygon confirmed (`reason` None) or refused a topic we subscribed to."""
        kind, _, symbol = topic.partition(".")
        if kind not in TOPICS or not symbol:
            return
        try:
            self._pending.remove(topic)
        except ValueError:
            if reason is not None:
                return  # not one of ours
        refused = self._refused.setdefault(symbol, {})
        if reason is None:
            refused.pop(kind, None)
            self.mark_served([symbol])
            return
        refused[kind] = reason
        self._warn(f"Polygon refused {topic}: {message}")
        if len(refused) == len(TOPICS):  # neither trades nor quotes: nothing streams for this symbol
            self.mark_unserved([symbol], refused["T"])

    # -- REST: previous closes, history ----------------------------------------------------------------
    def _rest(self, timeout: float) -> httpx.AsyncClient:
        # The key goes in a header, not the query string: URLs end up in logs (httpx logs each request).
        headers = {"Authorization": f"Bearer {self.api_key}"}
        return httpx.AsyncClient(base_url=self.api_url, timeout=timeout, headers=headers)

    async def previous_closes(self, symbols: list[str]) -> dict[str, float]:
        closes: dict[str, float] = {}
        async with self._rest(REST_TIMEOUT_SECONDS) as client:
            for start in range(0, len(symbols), SNAPSHOT_TICKERS_PER_REQUEST):
                chunk = symbols[start : start + SNAPSHOT_TICKERS_PER_REQUEST]
                response = await client.get(SNAPSHOT_PATH, params={"tickers": ",".join(chunk)})
                response.raise_for_status()
                for ticker in orjson.loads(response.content).get("tickers") or []:
                    if not isinstance(ticker, dict) or not isinstance(prev_day := ticker.get("prevDay"), dict):
                        continue
                    close = _number(prev_day.get("c"))
                    if isinstance(symbol := ticker.get("ticker"), str) and close is not None and close > 0:
                        closes[symbol] = close
        return closes

    async def history_bars(self, symbols: list[str], *, start_ms: int, end_ms: int) -> dict[str, list[Bar]]:
        """One-minute aggregates per ticker (see the module docstring), HISTORY_CONCURRENCY requests at once."""
        async with self._rest(self.HISTORY_TIMEOUT_SECONDS) as client:

            async def aggregates(symbol: str) -> list[Bar]:
                url: str | None = f"/v2/aggs/ticker/{quote(symbol, safe='')}/range/1/minute/{start_ms}/{end_ms}"
                params: dict[str, str] | None = {"adjusted": "true", "sort": "asc", "limit": AGGS_LIMIT}
                bars: list[Bar] = []
                for _ in range(AGGS_PAGES_MAX):
                    if url is None:
                        return bars
                    url = await self._aggregates_page(client, url, params, bars)
                    params = None  # a next_url carries its own query
                raise ValueError(f"Polygon's aggregates of {symbol} went on for more than {AGGS_PAGES_MAX} pages")

            return await each_symbol(symbols, aggregates, gate=asyncio.Semaphore(self.HISTORY_CONCURRENCY))

    async def _aggregates_page(
        self, client: httpx.AsyncClient, url: str, params: dict[str, str] | None, bars: list[Bar]
    ) -> str | None:
        """Read one answer's bars into `bars`; the next page's URL, if any."""
        response = await client.get(url, params=params)
        if response.status_code in {401, 403}:
            raise VendorError(
                f"Polygon refused the aggregates request (HTTP {response.status_code}): POLYGON_API_KEY's plan may "
                "not include minute aggregates"
            )
        response.raise_for_status()
        body = orjson.loads(response.content)
        if body.get("status") not in ("OK", "DELAYED"):
            raise ValueError(f"Polygon's aggregates answered status {body.get('status')!r}: {body!r:.200}")
        bars.extend(minute_bar(r["t"], r["o"], r["h"], r["l"], r["c"], r["v"]) for r in body.get("results") or [])
        next_url = body.get("next_url")
        if next_url is None:
            return None
        if not isinstance(next_url, str) or urlsplit(next_url).netloc not in ("", urlsplit(self.api_url).netloc):
            raise ValueError(f"Polygon's next_url leaves {self.api_url} (the key is not sent there): {next_url!r}")
        return next_url
