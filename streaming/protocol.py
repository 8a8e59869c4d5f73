"""The websocket protocol of SPEC: close codes, error messages and client actions."""

from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class CloseCode(IntEnum):
    BAD_REQUEST = 4400
    NOT_AUTHENTICATED = 4401
    PAYMENT_REQUIRED = 4402
    FORBIDDEN = 4403
    UNKNOWN_TENANT = 4404
    SLOW_CONSUMER = 4408
    LIMIT = 4429
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012


@dataclass(frozen=True)
class Refusal:
    """Why a connection is refused or closed: an error code, a close code and a human message."""

    close_code: CloseCode
    code: str
    message: str
    extra: dict[str, Any] | None = None

    def message_dict(self) -> dict[str, Any]:
        return {"type": "error", "code": self.code, "message": self.message, **(self.extra or {})}


NOT_AUTHENTICATED = Refusal(CloseCode.NOT_AUTHENTICATED, "not_authenticated", "Log in to stream quotes.")
UNKNOWN_TENANT = Refusal(CloseCode.UNKNOWN_TENANT, "unknown_tenant", "No organisation uses this address.")
ORIGIN_FORBIDDEN = Refusal(CloseCode.FORBIDDEN, "forbidden", "Connections from this web site are not allowed.")
WIDGET_ORIGIN_MISSING = Refusal(
    CloseCode.FORBIDDEN, "forbidden", "A widget connects from a web page: its Origin header is missing or unusable."
)
ORGANISATION_DELETED = Refusal(CloseCode.UNKNOWN_TENANT, "unknown_tenant", "This organisation has been deleted.")
SLOW_CONSUMER = Refusal(
    CloseCode.SLOW_CONSUMER, "slow_consumer", "The connection stopped reading quotes; reconnect to resume."
)
TOO_MANY_BAD_FRAMES = Refusal(
    CloseCode.BAD_REQUEST, "bad_request", "Too many malformed messages; fix the client before reconnecting."
)
RATE_LIMITED = Refusal(
    CloseCode.BAD_REQUEST, "rate_limited", "Too many messages; send at most 10 actions a second. This one was ignored."
)


def connects_rate_limited(retry_after: int) -> Refusal:
    """Too many connects from one address (core/ratelimit.py); unlike a plan limit, worth retrying later."""
    return Refusal(
        CloseCode.LIMIT,
        "rate_limited",
        f"Too many connections from your network address; try again in {retry_after} s.",
        {"retry_after": retry_after},
    )


CONNECTION_FAILED = Refusal(
    CloseCode.INTERNAL_ERROR, "server_error", "The server could not keep this connection; reconnect to resume."
)
SERVER_RESTART = Refusal(CloseCode.SERVICE_RESTART, "server_restart", "The server is restarting; reconnect shortly.")

ACTIONS = ("subscribe", "unsubscribe", "ping", "throttle")
THROTTLE_RANGE = (1, 50)
MAX_SYMBOLS_PER_MESSAGE = 1000
MAX_FRAME_BYTES = 64 * 1024
# An action nests two levels ({"symbols": [...]}). orjson reads up to 1,024, but Python's recursion
# limit is 1,000: str() of a value ~1,000 deep (an unknown action, a rejected symbol) raised
# RecursionError and ended the connection without an answer (the fuzzing found it).
MAX_NESTING = 16


@dataclass(frozen=True)
class ClientAction:
    action: str
    symbols: list[Any]
    max_per_second: int | None = None


class ProtocolError(ValueError):
    """A client frame that does not follow the protocol."""


def action_parse(content: Any) -> ClientAction:
    """Validate a decoded client frame; raise ProtocolError with a message for the client."""
    if not isinstance(content, dict):
        raise ProtocolError('Send a JSON object such as {"action": "ping"}.')
    if nesting_exceeds(content, MAX_NESTING):
        raise ProtocolError(f"That frame nests deeper than {MAX_NESTING} levels; an action needs two.")
    action = content.get("action")
    if action not in ACTIONS:
        raise ProtocolError(f"Unknown action {str(action)[:40]!r}; use one of: {', '.join(ACTIONS)}.")
    if action == "ping":
        return ClientAction("ping", [])
    if action == "throttle":
        rate = content.get("max_per_second")
        low, high = THROTTLE_RANGE
        if not isinstance(rate, int) or isinstance(rate, bool) or not low <= rate <= high:
            raise ProtocolError(f'“throttle” needs "max_per_second": a whole number from {low} to {high}.')
        return ClientAction("throttle", [], rate)
    symbols = content.get("symbols")
    if not isinstance(symbols, list) or not symbols:
        raise ProtocolError(f'“{action}” needs a non-empty list of symbols, e.g. {{"symbols": ["AAPL"]}}.')
    if len(symbols) > MAX_SYMBOLS_PER_MESSAGE:
        raise ProtocolError(f"At most {MAX_SYMBOLS_PER_MESSAGE} symbols per message.")
    return ClientAction(action, symbols)


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether lists and objects nest deeper than `limit` (without recursion: the value may be 1,000 deep)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in item)
    return False
