"""The symbol directory for people: search-as-you-type and display names (public schema).

Search runs in PostgreSQL rather than over a per-process copy of the directory: one source of
truth (a `load_symbols` refresh is visible to every process at once, with no cache to expire), and
it keeps working when the directory grows from ~1,800 rows to a vendor's tens of thousands. It is
tiered, each tier a small query that stops the search once it has `limit` rows:

1. ticker prefix, exact ticker first: the varchar_pattern_ops index Django puts on the unique
   `symbol` column (tickers are stored upper-case, a check constraint guarantees it);
2. company-name prefix: the UPPER(name) text_pattern_ops index of migration 0002;
3. company name containing the text, word starts first: a scan, which no B-tree index can serve.
   A trigram (pg_trgm) index would, but the embedded PostgreSQL that `make run` falls back to
   ships without that extension; over this directory the scan costs well under a millisecond.

Within a tier the best-known companies (in the most tracked indices) come first, then the shorter.

Measured with bench/symbol_search_probe.py (200 random prefixes); see the README's design notes.
"""

from collections.abc import Iterable

from django.db.models import Case, F, Func, IntegerField, QuerySet, Value, When
from django.db.models.functions import Length, Upper

from .models import Symbol

SEARCH_LIMIT = 10
QUERY_MAX_LENGTH = 40
# Within a tier, companies listed in more of the tracked indices (DOW JONES, NASDAQ 100, S&P 500, …)
# come first: for "appl", Apple Inc. before AppLovin and Applied Materials.
_BEST_KNOWN_FIRST = (Func(F("indices"), function="CARDINALITY", output_field=IntegerField()).desc(),)


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


def _entries() -> QuerySet[Symbol]:
    return Symbol.objects.only("symbol", "name", "exchange")


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
