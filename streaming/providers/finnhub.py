"""Finnhub's websocket trades stream (https://finnhub.io/docs/api/websocket-trades) as a provider.

The protocol:
- Connect to `wss://ws.finnhub.io?token=<key>`: the key in the URL is the whole authentication, and
  a bad key is refused on the upgrade with HTTP 401. An `{"type":"error","msg":…}` about the key is
  handled alike, should Finnhub answer that way instead. Either is fatal (FINNHUB_API_KEY is wrong).
- `{"type":"subscribe","symbol":"AAPL"}` and `{"type":"unsubscribe","symbol":"AAPL"}`, one symbol
  per message. Finnhub does not acknowledge them.
- `{"type":"trade","data":[{"s":"AAPL","p":187.2,"t":1700000000000,"v":100,"c":[…]}]}`: trades only
  (t in epoch milliseconds, v the trade's size), so bid and ask are the last price (QuoteBook).
- `{"type":"ping"}` keep-alives, ignored.
- The free plan serves 50 symbols per connection. Over the cap, each further subscribe is answered
  `{"type":"error","msg":"Subscribing to too many symbols"}`, which does not name the symbol; the
  connection stays up and the symbol stays silent. Unsubscribing frees a slot.

The cap is kept on our side too (SYMBOL_CAP, 50 by default): slots go to symbols in the order they
were first asked for, the rest are reported unserved ("symbol_limit") without being sent, and take a
slot when one frees. When Finnhub's cap turns out lower, each refusal takes back the last symbol
sent (the refused ones are always the last: Finnhub serves subscriptions in order) and lowers the
cap for the rest of that connection. Every new connection starts again from SYMBOL_CAP.

Yesterday's close (for change and change %) comes from the REST endpoint `GET /quote?symbol=…`
(field `pc`), with the key in the documented `X-Finnhub-Token` header: a `token=` query parameter
would be written to the log by httpx's request logging.

History (for delayed plans, see vendor.py): one-minute candles per symbol from `GET /stock/candle?symbol=…&
resolution=1&from=<unix s>&to=<unix s>`, answered `{"s":"ok","t":[…],"o":[…],"h":[…],"l":[…],"c":[…],"v":[…]}`
(parallel arrays) or `{"s":"no_data"}`. Finnhub serves candles on paid plans only: a 403 is reported in
the status as history unavailable (tried again every FATAL_RETRY_SECONDS), and delayed plans then get
quotes once the live stream has covered their delay. Closes and candles share CLOSES_CONCURRENCY.
"""

import asyncio
import itertools
import logging
import math
from collections.abc import Iterable
from typing import Any, TypeGuard
from urllib.parse import quote, urlsplit

import httpx
from django.conf import settings
from websockets.asyncio.client import ClientConnection

from streaming.quotes import Quote

from .history import Bar, minute_bar
from .vendor import VendorError, VendorStreamProvider, each_symbol

logger = logging.getLogger(__name__)

DEFAULT_STREAM_URL = "wss://ws.finnhub.io"
DEFAULT_API_URL = "https://finnhub.io/api/v1"
SYMBOL_LIMIT = "symbol_limit"
_CAP_ERROR = "too many symbols"  # in "Subscribing to too many symbols"
_KEY_ERROR_WORDS = ("api key", "apikey", "token", "unauthori", "authenticat", "forbidden")
_KEY_REFUSED = "Finnhub refused the key ({detail}): check FINNHUB_API_KEY."


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class FinnhubProvider(VendorStreamProvider):
    """Live trades from Finnhub (see the module docstring for the protocol)."""

    name = "finnhub"
    display_name = "Finnhub"
    SYMBOL_CAP = 50  # per connection: Finnhub's free plan
    CLOSES_CONCURRENCY = 4  # REST calls in flight, closes and candles (the free plan allows 30 a second)
    CLOSES_TIMEOUT_SECONDS = 5.0

    def __init__(
        self,
        *,
        api_key: str,
        stream_url: str = DEFAULT_STREAM_URL,
        api_url: str = DEFAULT_API_URL,
        symbol_cap: int | None = None,
    ) -> None:
        super().__init__(url=stream_url)
        self.api_key = api_key
        self.api_url = api_url.rstrip("/")
        if symbol_cap is not None:
            self.SYMBOL_CAP = symbol_cap
        self._cap = self.SYMBOL_CAP
        # Symbols with a subscribe sent on the current connection, in the order sent (a dict as an ordered set).
        self._streaming: dict[str, None] = {}
        self._rank: dict[str, int] = {}  # the order symbols were first asked for: who gets a slot
        self._ranks = itertools.count()
        self._bad_trades = 0
        self._rest_gate = asyncio.Semaphore(self.CLOSES_CONCURRENCY)

    @classmethod
    def from_settings(cls) -> "FinnhubProvider":
        api_key = str(settings.FINNHUB_API_KEY or "").strip()
        if not api_key:
            raise ValueError("The Finnhub provider needs an API key: set FINNHUB_API_KEY.")
        stream_url = str(settings.FINNHUB_STREAM_URL or DEFAULT_STREAM_URL)
        if urlsplit(stream_url).scheme not in {"ws", "wss"}:
            raise ValueError(f"FINNHUB_STREAM_URL must be a ws:// or wss:// URL, not {stream_url!r}.")
        return cls(
            api_key=api_key,
            stream_url=stream_url,
            api_url=str(settings.FINNHUB_API_URL or DEFAULT_API_URL),
            symbol_cap=getattr(settings, "FINNHUB_SYMBOL_CAP", None),  # optional: paid plans serve more
        )

    # -- subscriptions: slot order ---------------------------------------------------------------
    async def subscribe(self, symbols: Iterable[str]) -> None:
        symbols = list(symbols)
        for symbol in symbols:
            if symbol not in self._rank:
                self._rank[symbol] = next(self._ranks)
        await super().subscribe(symbols)

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        symbols = list(symbols)
        await super().unsubscribe(symbols)
        wanted = self.wanted()
        for symbol in symbols:
            if symbol not in wanted:
                self._rank.pop(symbol, None)

    # -- the wire protocol -----------------------------------------------------------------------
    def connect_url(self) -> str:
        separator = "&" if urlsplit(self.url).query else "?"
        return f"{self.url}{separator}token={quote(self.api_key, safe='')}"

    def handshake_refused(self, status: int) -> VendorError | None:
        if status in {401, 403}:
            return VendorError(_KEY_REFUSED.format(detail=f"HTTP {status} on connecting"), fatal=True)
        return None

    async def authenticate(self, ws: ClientConnection) -> None:
        # The key went in the URL. A new connection has no subscriptions: every slot is free again.
        self._streaming.clear()
        self._cap = self.SYMBOL_CAP
        self.mark_served([s for s, reason in self.status().unserved.items() if reason == SYMBOL_LIMIT])

    def subscribe_messages(self, symbols: list[str]) -> list[dict[str, Any]]:
        messages = []
        for symbol in sorted(symbols, key=self._slot_order):
            if symbol in self._streaming:
                continue
            if len(self._streaming) < self._cap:
                self._streaming[symbol] = None
                self.mark_served([symbol])
                messages.append({"type": "subscribe", "symbol": symbol})
            else:
                self.mark_unserved([symbol], SYMBOL_LIMIT)
        return messages

    def unsubscribe_messages(self, symbols: list[str]) -> list[dict[str, Any]]:
        messages = []
        for symbol in symbols:
            if symbol in self._streaming:
                del self._streaming[symbol]
                messages.append({"type": "unsubscribe", "symbol": symbol})
        # Freed slots go to the waiting symbols, first asked first served.
        waiting = [s for s, reason in self.status().unserved.items() if reason == SYMBOL_LIMIT]
        return messages + self.subscribe_messages(waiting)

    def handle(self, message: Any) -> list[Quote]:
        kind = message["type"]  # a frame that is not an object with a type is malformed (TypeError, KeyError)
        if kind == "trade":
            return self._trades(message["data"])
        if kind == "error":
            self._error(str(message.get("msg") or "an error without a message"))
        return []  # "ping", and any kind of message we do not use

    def _slot_order(self, symbol: str) -> tuple[float, str]:
        return self._rank.get(symbol, math.inf), symbol

    def _trades(self, data: Any) -> list[Quote]:
        if not isinstance(data, list):
            raise TypeError(f"trade data is a {type(data).__name__}, not a list")
        latest: dict[str, Quote] = {}  # the frame's trades conflated: the last quote per symbol
        for trade in data:
            if not isinstance(trade, dict):
                self._bad_trade(trade)
                continue
            symbol, price, ts, size = trade.get("s"), trade.get("p"), trade.get("t"), trade.get("v", 0)
            if not (isinstance(symbol, str) and _is_number(price) and _is_number(ts) and _is_number(size)):
                self._bad_trade(trade)
                continue
            if symbol not in self._streaming:
                continue  # unsubscribed, or refused over the cap: its trades in flight are dropped
            quote = self.book.trade(symbol, float(price), max(round(size), 0), int(ts))
            if quote is not None:
                latest[symbol] = quote
        return list(latest.values())

    def _bad_trade(self, trade: object) -> None:
        self._bad_trades += 1
        self._warn(f"{self._bad_trades} unreadable trades from Finnhub so far (skipped), e.g. {trade!r:.200}")

    def _error(self, text: str) -> None:
        lowered = text.lower()
        if _CAP_ERROR in lowered:
            if self._streaming:
                refused, _ = self._streaming.popitem()  # the last one sent
                self._cap = len(self._streaming)
                self.mark_unserved([refused], SYMBOL_LIMIT)
                logger.warning("finnhub: symbol cap reached at %d symbols; %s not served", self._cap, refused)
            return
        if any(word in lowered for word in _KEY_ERROR_WORDS):
            raise VendorError(_KEY_REFUSED.format(detail=text), fatal=True)
        self._status.error = f"Finnhub: {text}"
        logger.warning("finnhub: %s", text)

    # -- previous closes (REST) --------------------------------------------------------------------
    async def previous_closes(self, symbols: list[str]) -> dict[str, float]:
        if not symbols:
            return {}
        gate = self._rest_gate
        headers = {"X-Finnhub-Token": self.api_key}
        async with httpx.AsyncClient(timeout=self.CLOSES_TIMEOUT_SECONDS, headers=headers) as client:

            async def close(symbol: str) -> float | None:
                async with gate:
                    response = await client.get(f"{self.api_url}/quote", params={"symbol": symbol})
                if response.status_code in {401, 403}:
                    raise VendorError(_KEY_REFUSED.format(detail=f"HTTP {response.status_code} on /quote"))
                response.raise_for_status()
                value = response.json().get("pc")
                # Finnhub answers an unknown symbol with zeros: no close then.
                return float(value) if _is_number(value) and value > 0 else None

            results = await asyncio.gather(*(close(s) for s in symbols), return_exceptions=True)
        closes: dict[str, float] = {}
        failures: list[BaseException] = []
        for symbol, result in zip(symbols, results, strict=True):
            if isinstance(result, BaseException):
                failures.append(result)
            elif result is not None:
                closes[symbol] = result
        if failures:
            self._warn(f"previous close unavailable for {len(failures)} of {len(symbols)} symbols: {failures[0]!r}")
        return closes

    # -- history (REST) ----------------------------------------------------------------------------
    async def history_bars(self, symbols: list[str], *, start_ms: int, end_ms: int) -> dict[str, list[Bar]]:
        """One-minute candles per symbol (see the module docstring)."""
        window = {"resolution": "1", "from": str(start_ms // 1000), "to": str(end_ms // 1000)}
        headers = {"X-Finnhub-Token": self.api_key}
        async with httpx.AsyncClient(timeout=self.HISTORY_TIMEOUT_SECONDS, headers=headers) as client:

            async def candles(symbol: str) -> list[Bar]:
                response = await client.get(f"{self.api_url}/stock/candle", params={"symbol": symbol, **window})
                if response.status_code == 403:
                    raise VendorError(
                        "Finnhub does not serve candles to FINNHUB_API_KEY's plan (HTTP 403 on /stock/candle): "
                        "no history, so a delayed plan gets quotes once the live stream has covered its delay",
                        fatal=True,
                    )
                if response.status_code == 401:
                    raise VendorError(_KEY_REFUSED.format(detail="HTTP 401 on /stock/candle"), fatal=True)
                response.raise_for_status()
                return _candles(response.json())

            return await each_symbol(symbols, candles, gate=self._rest_gate)


def _candles(body: Any) -> list[Bar]:
    """The bars of a /stock/candle answer (parallel arrays); ValueError for one that is not."""
    if body.get("s") == "no_data":
        return []
    if body.get("s") != "ok":
        raise ValueError(f"Finnhub's candles answered s={body.get('s')!r}")
    columns = [body[key] for key in ("t", "o", "h", "l", "c", "v")]
    return [minute_bar(*bar, t_unit_ms=1000) for bar in zip(*columns, strict=True)]
