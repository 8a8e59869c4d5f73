"""Symbol validation against the directory, cached per process (the directory changes only on load)."""

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from tenants.db import public_schema

from .models import Symbol

SYMBOL_RE = re.compile(r"[A-Z0-9][A-Z0-9.\-]{0,11}")
CACHE_SECONDS = 300


@dataclass(frozen=True)
class Rejection:
    symbol: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"symbol": self.symbol, "reason": self.reason}


_known: frozenset[str] = frozenset()
_loaded_at = 0.0


def known_symbols() -> frozenset[str]:
    """Every ticker in the directory (synchronous: reads the public schema at most every 5 minutes)."""
    global _known, _loaded_at
    if not _known or time.monotonic() - _loaded_at > CACHE_SECONDS:
        # Callers may be inside an organisation's schema (a watchlist edit): leave them there.
        with public_schema():
            _known = frozenset(Symbol.objects.values_list("symbol", flat=True))
        _loaded_at = time.monotonic()
    return _known


def symbols_validate(raw: Iterable[object]) -> tuple[list[str], list[Rejection]]:
    """Split requested symbols into valid ones (upper-cased, de-duplicated, in order) and rejections.

    Linear in the number asked for: a client may send a thousand a frame, and this runs for each.
    """
    known = known_symbols()
    accepted: list[str] = []
    rejected: list[Rejection] = []
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, str):
            rejected.append(Rejection(str(item)[:20], "invalid_symbol"))
            continue
        symbol = item.strip().upper()
        if not symbol or symbol in seen:
            continue
        seen.add(symbol)
        if not SYMBOL_RE.fullmatch(symbol):
            rejected.append(Rejection(symbol[:20], "invalid_symbol"))
        elif symbol not in known:
            rejected.append(Rejection(symbol, "unknown_symbol"))
        else:
            accepted.append(symbol)
    return accepted, rejected
