"""The websocket's query string, parsed once and strictly: what a connection asks for at connect."""

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from symbols.selectors import symbol_shared
from widgets.models import PUBLIC_ID_PATTERN
from widgets.tokens import MAX_TOKEN_LENGTH

from .protocol import CloseCode, Refusal

MAX_QUERY_BYTES = 16 * 1024
MAX_SYMBOLS_AT_CONNECT = 1000
ID_RE = re.compile(r"[0-9]{1,18}")  # ASCII digits only: str.isdigit() also accepts "²", which int() refuses
KNOWN_PARAMS = frozenset({"symbols", "watchlist", "widget", "token"})
WIDGET_ID_RE = re.compile(PUBLIC_ID_PATTERN)


@dataclass(frozen=True)
class WidgetParams:
    """`?widget=<public id>&token=<token>`: a widget viewer (the token is checked in the connect step)."""

    public_id: str
    token: str


@dataclass(frozen=True)
class StreamParams:
    """`?symbols=A,B` (raw, not yet validated), `?watchlist=<id>`, or a widget viewer's `?widget=&token=`."""

    symbols: tuple[str, ...] = ()
    watchlist_id: int | None = None
    widget: WidgetParams | None = None


def bad_request(message: str) -> Refusal:
    return Refusal(CloseCode.BAD_REQUEST, "bad_request", message)


def id_parse(raw: str) -> int | None:
    """A database id written in ASCII digits, or None."""
    return int(raw) if ID_RE.fullmatch(raw) else None


def stream_params_parse(query_string: bytes) -> StreamParams | Refusal:
    """Parse the connect URL's query; anything unknown, repeated or malformed is refused (fail closed)."""
    if len(query_string) > MAX_QUERY_BYTES:
        return bad_request(f"The query string is longer than {MAX_QUERY_BYTES // 1024} KB.")
    try:
        pairs = parse_qsl(query_string.decode("ascii"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return bad_request("The query string must be URL-encoded ASCII.")
    params: dict[str, str] = {}
    for key, value in pairs:
        if key not in KNOWN_PARAMS:
            return bad_request(f"Unknown parameter {key[:40]!r}; use ?symbols=AAPL,MSFT or ?watchlist=<id>.")
        if key in params:
            return bad_request(f"Give ?{key}= once.")
        params[key] = value
    if "widget" in params or "token" in params:
        return widget_params_parse(params)
    if "watchlist" in params:
        if "symbols" in params:
            return bad_request("Give either ?symbols= or ?watchlist=, not both.")
        watchlist_id = id_parse(params["watchlist"])
        if watchlist_id is None:
            return bad_request("?watchlist= takes a watchlist id (digits).")
        return StreamParams(watchlist_id=watchlist_id)
    symbols = tuple(symbol_shared(s) for s in params.get("symbols", "").split(",") if s.strip())
    if len(symbols) > MAX_SYMBOLS_AT_CONNECT:
        return bad_request(f"Ask for at most {MAX_SYMBOLS_AT_CONNECT} symbols at connect.")
    return StreamParams(symbols=symbols)


def widget_params_parse(params: dict[str, str]) -> StreamParams | Refusal:
    """A widget viewer names its widget and token, and nothing else (a widget shows its own symbols)."""
    if set(params) != {"widget", "token"}:
        return bad_request("A widget connection takes ?widget=<id>&token=<token> and nothing else.")
    if not WIDGET_ID_RE.fullmatch(params["widget"]):
        return bad_request("?widget= takes a widget's public id, as in its embed snippet.")
    token = params["token"]
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return bad_request("?token= takes the token from the widget's token endpoint.")
    return StreamParams(widget=WidgetParams(params["widget"], token))
