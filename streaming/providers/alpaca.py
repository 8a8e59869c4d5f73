"""Alpaca's market data v2 stream as a provider (https://docs.alpaca.markets/docs/streaming-market-data).

The protocol, as Alpaca documents it (and as alpaca-py's alpaca/data/live/websocket.py speaks it):

- connect to `<ALPACA_STREAM_URL>/<feed>` (iex, sip, …); the server greets with
  `[{"T":"success","msg":"connected"}]`;
- send `{"action":"auth","key":…,"secret":…}` within 10 s; the answer is
  `[{"T":"success","msg":"authenticated"}]` or an error: 402 auth failed, 406 connection limit
  exceeded (most plans allow one stream per key), 409 insufficient subscription (the feed is not in
  the plan), 404 auth timeout;
- send `{"action":"subscribe","trades":[…],"quotes":[…]}` (and "unsubscribe" likewise); the server
  answers each request, in order, with `[{"T":"subscription","trades":[…],"quotes":[…],…}]` listing
  the whole current subscription, or with an error. A 405 (symbol limit exceeded) or 400 (invalid
  syntax, also sent for a malformed symbol) refuses the request whole: the subscription stays as
  it was;
- data frames are JSON arrays of messages: trades `{"T":"t","S","p","s","t"}` and quotes
  `{"T":"q","S","bp","bs","ap","as","t"}`, `t` an RFC-3339 time with nanoseconds. Subscribing to
  trades also brings corrections ("c") and cancel errors ("x"); they are ignored here. Frames are
  JSON text unless msgpack is asked for (it is not).

Trades feed QuoteBook.trade and quotes QuoteBook.bid_ask; `ts` is Alpaca's timestamp in epoch ms.

History (for delayed plans, see vendor.py): one-minute bars from `GET /v2/stocks/bars?symbols=…&
timeframe=1Min&start=…&end=…&limit=…&sort=asc&feed=…`, answered `{"bars":{"AAPL":[{"t","o","h","l","c","v",
…}]},"next_page_token":…}`; pages are followed by `page_token` until the token is null.

Replies carry no request id, so the adapter keeps its requests in the order they were sent and
matches each `subscription` or 400/405 reply to the oldest one. A refused multi-symbol request is
asked again one symbol per request, so that every symbol within the plan's limit is served and only
the ones beyond it are marked unserved ("symbol_limit"); the refusal of a single symbol tells the
limit (the number of symbols then held), which is remembered for the process: later requests are
cut to the room left (the rest marked unserved without asking), and when an unsubscribe frees room
the waiting symbols are subscribed. A plan upgrade is therefore seen after a restart.
"""

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from django.conf import settings
from websockets.asyncio.client import ClientConnection

from streaming.quotes import Quote

from .history import Bar, minute_bar
from .vendor import VendorError, VendorStreamProvider

logger = logging.getLogger(__name__)

DEFAULT_STREAM_URL = "wss://stream.data.alpaca.markets/v2"
DEFAULT_DATA_URL = "https://data.alpaca.markets"
SNAPSHOTS_TIMEOUT_SECONDS = 5.0
SNAPSHOTS_PER_REQUEST = 200  # symbols per snapshots (and bars) request, to keep the URL short
BARS_PAGE_LIMIT = 10_000  # bars per page, Alpaca's maximum (all symbols of the request together)
BARS_PAGES_MAX = 100  # a day of 200 symbols is 8 pages: more means the vendor does not advance its token
# Errors that end the session: raised as VendorError (fatal ones wait FATAL_RETRY_SECONDS).
_FATAL = {402, 409, 410}
_RECONNECT = {401, 404, 406, 407}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def timestamp_ms(value: str) -> int:
    """Epoch milliseconds of an RFC-3339 time such as "2024-07-24T07:56:53.639713735Z" (digits beyond µs dropped)."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"a timestamp without a time zone: {value!r}")
    return (moment - _EPOCH) // _MILLISECOND


def rfc3339_ms(ms: int) -> str:
    """An epoch-ms moment as RFC 3339 in UTC, to the second, e.g. "2024-07-24T07:56:53Z"."""
    return f"{datetime.fromtimestamp(ms // 1000, UTC):%Y-%m-%dT%H:%M:%SZ}"


def _alpaca_bar(item: Any) -> Bar:
    return minute_bar(timestamp_ms(item["t"]), item["o"], item["h"], item["l"], item["c"], item["v"])


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class _Request:
    action: str  # "subscribe" or "unsubscribe"
    symbols: tuple[str, ...]


class AlpacaProvider(VendorStreamProvider):
    """Trades and quotes from Alpaca's market data v2 stream (see the module docstring)."""

    name = "alpaca"
    display_name = "Alpaca"
    AUTH_TIMEOUT_SECONDS = 10.0  # Alpaca itself allows 10 s before "404 auth timeout"

    def __init__(
        self,
        *,
        key_id: str,
        secret_key: str,
        feed: str = "iex",
        stream_url: str = DEFAULT_STREAM_URL,
        data_url: str = DEFAULT_DATA_URL,
    ) -> None:
        self.feed = feed.strip("/")
        super().__init__(url=f"{stream_url.rstrip('/')}/{self.feed}")
        self.key_id = key_id
        self.secret_key = secret_key
        self.data_url = data_url.rstrip("/")
        # The plan's symbol limit, once a 405 has told it (None: not known).
        self.symbol_limit: int | None = None
        # On the current connection: requests awaiting their reply, oldest first; the symbols the
        # last `subscription` reply listed; symbols to ask for again (one list per request).
        self._requests: deque[_Request] = deque()
        self._confirmed: set[str] = set()
        self._again: list[list[str]] = []
        self._promote = False
        self._again_task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls) -> "AlpacaProvider":
        """The provider configured from ALPACA_* settings; ValueError naming what is missing."""
        key_id = str(settings.ALPACA_API_KEY_ID or "").strip()
        secret_key = str(settings.ALPACA_API_SECRET_KEY or "").strip()
        feed = str(settings.ALPACA_FEED or "").strip()
        missing = [
            name
            for name, value in (
                ("ALPACA_API_KEY_ID", key_id),
                ("ALPACA_API_SECRET_KEY", secret_key),
                ("ALPACA_FEED", feed),
            )
            if not value
        ]
        if missing:
            raise ValueError(
                f"The Alpaca provider needs {' and '.join(missing)}: set {'it' if len(missing) == 1 else 'them'} "
                "in the environment (the API key pair is on the Alpaca dashboard; ALPACA_FEED is iex or sip)."
            )
        return cls(
            key_id=key_id,
            secret_key=secret_key,
            feed=feed,
            stream_url=settings.ALPACA_STREAM_URL or DEFAULT_STREAM_URL,
            data_url=settings.ALPACA_DATA_URL or DEFAULT_DATA_URL,
        )

    # -- the wire protocol -------------------------------------------------------------------------------
    async def authenticate(self, ws: ClientConnection) -> None:
        self._session_reset()
        try:
            async with asyncio.timeout(self.AUTH_TIMEOUT_SECONDS):
                self._expect(await ws.recv(), "connected")
                await ws.send(orjson.dumps({"action": "auth", "key": self.key_id, "secret": self.secret_key}).decode())
                self._expect(await ws.recv(), "authenticated")
        except TimeoutError:
            raise VendorError(
                f"Alpaca did not complete the authentication within {self.AUTH_TIMEOUT_SECONDS:g} s"
            ) from None

    def handshake_refused(self, status: int) -> VendorError | None:
        if status == 404:  # no stream at that path: a feed name Alpaca does not have, or a wrong URL
            return VendorError(
                f"Alpaca has no stream at {self.url} (HTTP 404 on connecting): check ALPACA_FEED (iex, sip, …) "
                "and ALPACA_STREAM_URL",
                fatal=True,
            )
        return None

    def subscribe_messages(self, symbols: list[str]) -> list[dict[str, Any]]:
        asked = list(symbols)
        if self.symbol_limit is not None:  # ask only for what fits; the rest wait for room
            room = max(self.symbol_limit - len(self._held()), 0)
            asked, over = asked[:room], asked[room:]
            self.mark_unserved(over, "symbol_limit")
        if not asked:
            return []
        self._requests.append(_Request("subscribe", tuple(asked)))
        return [{"action": "subscribe", "trades": asked, "quotes": asked}]

    def unsubscribe_messages(self, symbols: list[str]) -> list[dict[str, Any]]:
        held = self._held()
        asked = [s for s in symbols if s in held]  # never asked for (over the limit): nothing to undo
        if not asked:
            return []
        self._requests.append(_Request("unsubscribe", tuple(asked)))
        return [{"action": "unsubscribe", "trades": asked, "quotes": asked}]

    def handle(self, message: Any) -> list[Quote]:
        if not isinstance(message, list):
            raise TypeError(f"an Alpaca frame is a JSON array, not {type(message).__name__}")
        quotes: list[Quote] = []
        for item in message:  # one unreadable message must not cost the others of the frame
            try:
                quote = self._item(item)
            except (LookupError, TypeError, ValueError, AttributeError) as exc:
                self._malformed += 1
                self._warn(f"{self._malformed} messages from Alpaca could not be read so far: {exc!r}")
                continue
            if quote is not None:
                quotes.append(quote)
        return quotes

    def _rest(self, timeout: float) -> httpx.AsyncClient:
        """A client of the market data REST API, the key in Alpaca's headers."""
        headers = {"APCA-API-KEY-ID": self.key_id, "APCA-API-SECRET-KEY": self.secret_key}
        return httpx.AsyncClient(base_url=self.data_url, headers=headers, timeout=timeout)

    def _chunks(self, symbols: list[str]) -> list[dict[str, str]]:
        """The `symbols` (and `feed`) parameters of each request, SNAPSHOTS_PER_REQUEST symbols at a time."""
        feed = {"feed": self.feed} if self.feed != "test" else {}  # the test stream has no REST counterpart
        return [
            {"symbols": ",".join(symbols[start : start + SNAPSHOTS_PER_REQUEST]), **feed}
            for start in range(0, len(symbols), SNAPSHOTS_PER_REQUEST)
        ]

    async def previous_closes(self, symbols: list[str]) -> dict[str, float]:
        """Each symbol's previous daily close, from GET /v2/stocks/snapshots (prevDailyBar.c)."""
        closes: dict[str, float] = {}
        async with self._rest(SNAPSHOTS_TIMEOUT_SECONDS) as client:
            for params in self._chunks(symbols):
                chunk = params["symbols"].split(",")
                response = await client.get("/v2/stocks/snapshots", params=params)
                response.raise_for_status()
                snapshots = response.json()  # {"AAPL": {"prevDailyBar": {"c": 160.62, …}, …}, …}
                if not isinstance(snapshots, dict):
                    raise TypeError(f"snapshots: a JSON object was expected, not {type(snapshots).__name__}")
                for symbol in chunk:
                    snapshot = snapshots.get(symbol)
                    bar = snapshot.get("prevDailyBar") if isinstance(snapshot, dict) else None
                    close = bar.get("c") if isinstance(bar, dict) else None
                    if isinstance(close, int | float) and not isinstance(close, bool) and close > 0:
                        closes[symbol] = float(close)
        return closes

    async def history_bars(self, symbols: list[str], *, start_ms: int, end_ms: int) -> dict[str, list[Bar]]:
        """One-minute bars from GET /v2/stocks/bars, every page (see the module docstring)."""
        bars: dict[str, list[Bar]] = {}
        span = {"timeframe": "1Min", "start": rfc3339_ms(start_ms), "end": rfc3339_ms(end_ms),
                "limit": str(BARS_PAGE_LIMIT), "sort": "asc"}  # fmt: skip
        async with self._rest(self.HISTORY_TIMEOUT_SECONDS) as client:
            for params in self._chunks(symbols):
                token: str | None = None
                for _ in range(BARS_PAGES_MAX):
                    page = {**params, **span, **({"page_token": token} if token else {})}
                    token = await self._bars_page(client, page, bars)
                    if token is None:
                        break
                else:
                    raise ValueError(f"Alpaca's bars went on for more than {BARS_PAGES_MAX} pages")
        return bars

    @staticmethod
    async def _bars_page(client: httpx.AsyncClient, params: dict[str, str], bars: dict[str, list[Bar]]) -> str | None:
        """Read one page of bars into `bars`; its next page token (None: the last page)."""
        response = await client.get("/v2/stocks/bars", params=params)
        if response.status_code in {401, 403}:
            raise VendorError(f"Alpaca refused the bars request (HTTP {response.status_code}: {response.text[:200]})")
        response.raise_for_status()
        body = orjson.loads(response.content)
        page = body.get("bars") or {}  # null when no symbol has bars
        token = body.get("next_page_token")
        if not isinstance(page, dict) or not (token is None or isinstance(token, str)):
            raise TypeError(f"Alpaca's bars: {{symbol: [bar]}} and a page token were expected, not {body!r:.200}")
        for symbol, items in page.items():
            bars.setdefault(symbol, []).extend(_alpaca_bar(item) for item in items)
        return token or None

    async def stop(self) -> None:
        task = self._again_cancel()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().stop()

    # -- messages ----------------------------------------------------------------------------------------
    def _expect(self, raw: str | bytes, what: str) -> None:
        """The connection's next frame must be [{"T":"success","msg":what}]; an error becomes a VendorError."""
        try:
            messages = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise VendorError(f"Alpaca sent an unreadable frame instead of {what!r}: {raw[:200]!r}") from None
        if isinstance(messages, list):
            for message in messages:
                if isinstance(message, dict) and message.get("T") == "error":
                    raise self._refusal(message.get("code"), str(message.get("msg", "")))
            first = messages[0] if messages else None
            if isinstance(first, dict) and first.get("T") == "success" and first.get("msg") == what:
                return
        raise VendorError(f"Alpaca answered {raw[:200]!r} where {what!r} was expected")

    def _refusal(self, code: Any, text: str) -> VendorError:
        if code == 402:
            return VendorError(
                f"Alpaca refused the key (402 {text or 'auth failed'}): "
                "check ALPACA_API_KEY_ID and ALPACA_API_SECRET_KEY",
                fatal=True,
            )
        if code == 409:
            return VendorError(
                f"Alpaca refused the {self.feed!r} feed (409 {text or 'insufficient subscription'}): the account's "
                "market-data plan does not include it; check ALPACA_FEED (iex is free) or the plan",
                fatal=True,
            )
        if code == 410:
            return VendorError(
                f"Alpaca's stream at {self.url} does not offer trades and quotes (410 {text}): check ALPACA_STREAM_URL",
                fatal=True,
            )
        if code == 406:
            return VendorError(
                f"Alpaca refused the connection (406 {text or 'connection limit exceeded'}): another client is using "
                "this key's stream (most plans allow one); retrying"
            )
        return VendorError(f"Alpaca ended the session ({code} {text})")  # 401, 404 auth timeout, 407 slow client

    def _item(self, item: Any) -> Quote | None:
        kind = item["T"]
        if kind == "t":
            symbol = item["S"]
            if symbol not in self._wanted:  # e.g. just unsubscribed: Alpaca may still send a few
                return None
            return self.book.trade(symbol, _number(item["p"]), int(_number(item["s"])), timestamp_ms(item["t"]))
        if kind == "q":
            symbol = item["S"]
            if symbol not in self._wanted:
                return None
            return self.book.bid_ask(symbol, _number(item["bp"]), _number(item["ap"]), timestamp_ms(item["t"]))
        if kind == "subscription":
            self._subscription(item)
        elif kind == "error":
            self._error(item)
        return None  # "success", corrections, cancel errors and anything newer: nothing to show

    def _subscription(self, item: dict[str, Any]) -> None:
        trades, quotes = item.get("trades") or [], item.get("quotes") or []
        if not isinstance(trades, list) or not isinstance(quotes, list):
            raise TypeError(f"a subscription lists symbols, not {trades!r} and {quotes!r}")
        self._confirmed = {s for s in (*trades, *quotes) if isinstance(s, str)}
        request = self._requests.popleft() if self._requests else None
        self.mark_served(self._confirmed)
        if request is not None and request.action == "subscribe":
            # Accepted, yet not listed: Alpaca does not serve these under this name.
            self.mark_unserved([s for s in request.symbols if s not in self._confirmed], "unknown_symbol")
        room = self.symbol_limit is not None and self.symbol_limit > len(self._held())
        if room and any(reason == "symbol_limit" for reason in self.status().unserved.values()):
            self._promote = True  # room freed: subscribe the symbols that were waiting
            self._again_soon()

    def _error(self, item: dict[str, Any]) -> None:
        code, text = item.get("code"), str(item.get("msg", ""))
        if code in (400, 405):  # a refused request (the oldest one waiting); the subscription is unchanged
            request = self._requests.popleft() if self._requests else None
            if request is not None and request.action == "subscribe":
                self._refused(request, code)
            else:
                self._warn(f"Alpaca error {code} ({text}) for no subscribe request")
            return
        if code in _FATAL or code in _RECONNECT:
            raise self._refusal(code, text)
        # 403 already authenticated, 500 internal error, codes newer than this adapter: the session goes on.
        self._warn(f"Alpaca error {code} ({text})")

    def _refused(self, request: _Request, code: int) -> None:
        wanted = [s for s in request.symbols if s in self._wanted]
        if len(request.symbols) > 1:  # refused whole: ask for each symbol on its own
            if code == 405:
                self.symbol_limit = None  # a limit cut to the room left was refused: learn it again
            self._again.extend([s] for s in wanted)
            self._again_soon()
            return
        if code == 405:  # one symbol refused: the symbols held are the limit
            self.symbol_limit = len(self._confirmed)
            logger.warning("alpaca: the plan's symbol limit is %d; %s not streamed", self.symbol_limit, wanted)
        self.mark_unserved(wanted, "symbol_limit" if code == 405 else "unknown_symbol")

    # -- requests sent from here (not on the base's behalf) --------------------------------------------------
    def _held(self) -> set[str]:
        """Symbols subscribed on this connection or asked for (the Alpaca subscription once all is answered)."""
        held = set(self._confirmed)
        for request in self._requests:
            if request.action == "subscribe":
                held.update(request.symbols)
        return held

    def _again_soon(self) -> None:
        if self._again_task is None or self._again_task.done():
            self._again_task = asyncio.create_task(self._again_send(), name="provider-alpaca-again")

    async def _again_send(self) -> None:
        # Messages are built and queued for sending in one step, so that the order of `_requests`
        # is the order on the wire (the base's sends take the same lock, in the order they come).
        while self._again or self._promote:
            again, self._again = self._again, []
            promote, self._promote = self._promote, False
            messages: list[dict[str, Any]] = []
            for symbols in again:
                wanted = [s for s in symbols if s in self._wanted]
                if wanted:
                    messages += self.subscribe_messages(wanted)
            if promote:
                held = self._held()
                waiting = sorted(
                    s for s, reason in self.status().unserved.items() if reason == "symbol_limit" and s not in held
                )
                messages += self.subscribe_messages(waiting)
            await self._send(messages)

    def _again_cancel(self) -> asyncio.Task[None] | None:
        task, self._again_task = self._again_task, None
        if task is not None:
            task.cancel()
        return task

    def _session_reset(self) -> None:
        """A new connection: nothing asked for or held yet (the base subscribes every wanted symbol)."""
        self._again_cancel()
        self._requests.clear()
        self._confirmed = set()
        self._again, self._promote = [], False


__all__ = ["AlpacaProvider", "timestamp_ms"]
