"""The normalised quote every provider produces, and its JSON encoding (done once per quote)."""

from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class Quote:
    """One price update at the source; `ts` is epoch milliseconds at the source."""

    symbol: str
    price: float
    bid: float
    ask: float
    volume: int
    change: float
    change_pct: float
    ts: int

    def encode(self) -> bytes:
        """The SPEC's Quote object as JSON bytes, ready to be spliced into frames."""
        return orjson.dumps(self)  # orjson serialises dataclasses natively, in field order


def quotes_frame(kind: str, encoded_quotes: list[bytes], **extra: object) -> str:
    """A server frame carrying already-encoded quotes, e.g. {"type":"quotes","quotes":[…]}."""
    head = orjson.dumps({"type": kind, **extra})[:-1]  # the object without its closing brace
    return (head + b',"quotes":[' + b",".join(encoded_quotes) + b"]}").decode()


# The ASGI scope extension through which config.server lets a connection write ready-made frames:
# a callable taking the frame's bytes, answering whether it wrote them.
WRITE_FRAME = "tickerdeck.write_frame"
_UPDATE_HEAD = b'{"type":"quotes","quotes":['


def update_frame(encoded_quotes: list[bytes]) -> str:
    """`quotes_frame("quotes", …)` for the hot path: one join, no encoding."""
    return update_payload(encoded_quotes).decode()


def update_payload(encoded_quotes: list[bytes]) -> bytes:
    return _UPDATE_HEAD + b",".join(encoded_quotes) + b"]}"


def websocket_text_frame(payload: bytes) -> bytes:
    """A whole websocket text frame from the server (RFC 6455 5.2: FIN, opcode 1, unmasked), ready to
    write to any client's socket: built once, it serves every connection that is sent the same quotes."""
    length = len(payload)
    if length < 126:
        return bytes((0x81, length)) + payload
    if length < 65536:
        return bytes((0x81, 126)) + length.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + length.to_bytes(8, "big") + payload
