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


_UPDATE_HEAD = b'{"type":"quotes","quotes":['


def update_frame(encoded_quotes: list[bytes]) -> str:
    """`quotes_frame("quotes", …)` for the hot path: one join, no encoding."""
    return (_UPDATE_HEAD + b",".join(encoded_quotes) + b"]}").decode()
