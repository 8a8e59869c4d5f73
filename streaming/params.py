"""The websocket's query string, parsed once and strictly: what a connection asks for at connect."""

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from .protocol import CloseCode, Refusal

MAX_QUERY_BYTES = 16 * 1024
MAX_SYMBOLS_AT_CONNECT = 1000
ID_RE = re.compile(r"[0-9]{1,18}")  # ASCII digits only: str.isdigit() also accepts "²", which int() refuses
KNOWN_PARAMS = frozenset({"symbols", "watchlist"})
# Widget viewers will authenticate with these; until widgets exist, a widget connection is refused
# (it must never be a way around the Origin check of signed-in streams).
WIDGET_PARAMS = frozenset({"widget", "token"})

WIDGETS_UNAVAILABLE = Refusal(CloseCode.FORBIDDEN, "forbidden", "Widget connections are not available here.")


@dataclass(frozen=True)
class StreamParams:
    """`?symbols=A,B` (raw, not yet validated) or `?watchlist=<id>`."""

    symbols: tuple[str, ...] = ()
    watchlist_id: int | None = None


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
        if key in WIDGET_PARAMS:
            return WIDGETS_UNAVAILABLE
        if key not in KNOWN_PARAMS:
            return bad_request(f"Unknown parameter {key[:40]!r}; use ?symbols=AAPL,MSFT or ?watchlist=<id>.")
        if key in params:
            return bad_request(f"Give ?{key}= once.")
        params[key] = value
    if "watchlist" in params:
        if "symbols" in params:
            return bad_request("Give either ?symbols= or ?watchlist=, not both.")
        watchlist_id = id_parse(params["watchlist"])
        if watchlist_id is None:
            return bad_request("?watchlist= takes a watchlist id (digits).")
        return StreamParams(watchlist_id=watchlist_id)
    symbols = tuple(s for s in params.get("symbols", "").split(",") if s.strip())
    if len(symbols) > MAX_SYMBOLS_AT_CONNECT:
        return bad_request(f"Ask for at most {MAX_SYMBOLS_AT_CONNECT} symbols at connect.")
    return StreamParams(symbols=symbols)
