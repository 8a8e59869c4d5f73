"""Reads of the symbol directory: validation of requested tickers, search and display entries (public schema)."""

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db.models import Case, F, Func, IntegerField, QuerySet, Value, When
from django.db.models.functions import Length, Upper

from tenants.db import public_schema

from .models import Symbol

SYMBOL_RE = re.compile(r"[A-Z0-9][A-Z0-9.\-]{0,11}")
CACHE_SECONDS = 300
SEARCH_LIMIT = 10
QUERY_MAX_LENGTH = 40


@dataclass(frozen=True)
class Rejection:
    """A requested symbol that was refused, and why (`invalid_symbol`, `unknown_symbol`, `symbol_limit`)."""

    symbol: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"symbol": self.symbol, "reason": self.reason}


# -- validation: every subscription and watchlist edit ---------------------------------------------------
# A per-process copy of the tickers, refreshed every 5 minutes: validation runs for each subscribe
# frame (up to a thousand symbols) and each connect, and the directory changes only on a load.
# Each ticker of the directory, to itself: validated symbols are these string objects, so thousands of
# connections following AAPL hold one "AAPL" between them rather than a copy each.
_known: dict[str, str] = {}
_loaded_at = 0.0


def known_symbols() -> Mapping[str, str]:
    """Every ticker in the directory (synchronous: reads the public schema at most every 5 minutes)."""
    global _known, _loaded_at
    if not _known or time.monotonic() - _loaded_at > CACHE_SECONDS:
        # Callers may be inside an organisation's schema (a watchlist edit): leave them there.
        with public_schema():
            _known = {symbol: symbol for symbol in Symbol.objects.values_list("symbol", flat=True)}
        _loaded_at = time.monotonic()
    return _known


def symbol_shared(raw: str) -> str:
    """`raw`, or the directory's own string when `raw` is a known ticker spelt the same (no query: the
    directory as last loaded): what a connection keeps of its query string then costs no memory."""
    return _known.get(raw, raw)


def known_symbols_loaded() -> bool:
    """Whether `known_symbols()` answers without a query (safe to call on the event loop)."""
    return bool(_known) and time.monotonic() - _loaded_at <= CACHE_SECONDS


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
        elif (canonical := known.get(symbol)) is None:
            rejected.append(Rejection(symbol, "unknown_symbol"))
        else:
            accepted.append(canonical)
    return accepted, rejected


# -- search and display: for people ------------------------------------------------------------------------
# Search runs in PostgreSQL rather than over the per-process copy above: one source of truth (a
# `load_symbols` refresh is visible to every process at once), and it keeps working when the
# directory grows from ~1,800 rows to a vendor's tens of thousands. It is tiered, each tier a small
# query that stops the search once it has `limit` rows:
# 1. ticker prefix, exact ticker first: the varchar_pattern_ops index Django puts on the unique
#    `symbol` column (tickers are stored upper-case, a check constraint guarantees it);
# 2. company-name prefix: the UPPER(name) text_pattern_ops index (streaming migration 0002);
# 3. company name containing the text, word starts first: a scan, which no B-tree index can serve.
#    A trigram (pg_trgm) index would, but the embedded PostgreSQL that `make run` falls back to
#    ships without that extension; over this directory the scan costs well under a millisecond.
# Within a tier the best-known companies (in the most tracked indices) come first, then the shorter.
# Measured with bench/symbol_search_probe.py (200 random prefixes); see the README's design notes.

# Companies listed in more of the tracked indices (DOW JONES, NASDAQ 100, S&P 500, …) come first:
# for "appl", Apple Inc. before AppLovin and Applied Materials.
_BEST_KNOWN_FIRST = (Func(F("indices"), function="CARDINALITY", output_field=IntegerField()).desc(),)


def rejection_problems(rejected: list[Rejection]) -> list[str]:
    """What people are told about refused tickers: one sentence per kind of problem."""
    invalid = [r.symbol for r in rejected if r.reason == "invalid_symbol"]
    unknown = [r.symbol for r in rejected if r.reason == "unknown_symbol"]
    problems: list[str] = []
    if invalid:
        problems.append(
            f"Not a ticker: {', '.join(invalid)}. Tickers are letters and digits, with dots or hyphens "
            "(for example AAPL or BRK-B)."
        )
    if unknown:
        problems.append(
            f"Not in the symbol directory: {', '.join(unknown)}. Search by company name or ticker to find "
            "the listed symbol."
        )
    return problems


def symbol_search(*, query: str, limit: int = SEARCH_LIMIT) -> list[Symbol]:
    """Directory entries matching `query` by ticker prefix or company name, best first, at most `limit`."""
    text = " ".join(query.split()).upper()[:QUERY_MAX_LENGTH]
    if not text or limit <= 0:
        return []
    found: dict[str, Symbol] = {}
    for tier in _search_tiers(text):
        remaining = limit - len(found)
        for entry in tier.exclude(symbol__in=list(found))[:remaining]:
            found[entry.symbol] = entry
        if len(found) >= limit:
            break
    return list(found.values())


def symbol_entries(*, symbols: Iterable[str]) -> dict[str, Symbol]:
    """The directory entries of these tickers, by ticker (tickers not in the directory are left out)."""
    return {entry.symbol: entry for entry in _entries().filter(symbol__in=list(symbols))}


def symbol_names(*, symbols: Iterable[str]) -> dict[str, str]:
    """Company names of these tickers, by ticker (tickers not in the directory are left out)."""
    return dict(Symbol.objects.filter(symbol__in=list(symbols)).values_list("symbol", "name"))


def _entries() -> QuerySet[Symbol]:
    return Symbol.objects.only("symbol", "name", "exchange", "exchange_ticker")


def _search_tiers(text: str) -> list[QuerySet[Symbol]]:
    by_name = _entries().annotate(upper_name=Upper("name"))
    return [
        _entries()
        .filter(symbol__startswith=text)
        .order_by(_first_when(symbol=text), *_BEST_KNOWN_FIRST, Length("symbol"), "symbol"),
        by_name.filter(upper_name__startswith=text).order_by(
            *_BEST_KNOWN_FIRST, Length("name"), "upper_name", "symbol"
        ),
        by_name.filter(upper_name__contains=text).order_by(
            _first_when(upper_name__contains=f" {text}"), *_BEST_KNOWN_FIRST, Length("name"), "upper_name", "symbol"
        ),
    ]


def _first_when(**condition: str) -> Case:
    """An ordering key: 0 for rows that meet `condition`, 1 for the others."""
    return Case(When(**condition, then=Value(0)), default=Value(1), output_field=IntegerField())
