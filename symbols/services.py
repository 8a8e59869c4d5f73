"""Writes of the symbol directory: bringing it up to date with its source."""

from dataclasses import dataclass

from django.db import transaction

from .models import Symbol
from .source import directory_rows

# Every column the source decides; `symbol` is the key.
SOURCE_FIELDS = ("name", "exchange", "exchange_ticker", "country", "indices", "isin")


@dataclass(frozen=True)
class DirectoryLoad:
    """What a load did, in tickers: added, updated, already up to date, kept though the source dropped them."""

    added: int
    updated: int
    unchanged: int
    kept: int  # watchlists may still hold them, and validation still accepts them

    def __str__(self) -> str:
        done = f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged"
        text = f"{self.added + self.updated + self.unchanged} symbols from pytickersymbols: {done}"
        return f"{text}; {self.kept} no longer listed there, kept" if self.kept else text


def symbols_load() -> DirectoryLoad:
    """Add the source's new tickers and update changed ones; a load with nothing new writes no row."""
    rows = directory_rows()
    with transaction.atomic():
        current = {values[0]: values[1:] for values in Symbol.objects.values_list("symbol", *SOURCE_FIELDS).iterator()}
        stale = [
            Symbol(**row)
            for symbol, row in rows.items()
            if current.get(symbol) != tuple(row[field] for field in SOURCE_FIELDS)
        ]
        # An upsert, not separate inserts and updates: a second load running at the same time (two
        # `bootstrap`s) finds the rows the first one added instead of failing on the unique ticker.
        Symbol.objects.bulk_create(
            stale, update_conflicts=True, unique_fields=["symbol"], update_fields=list(SOURCE_FIELDS), batch_size=500
        )
    added = sum(1 for entry in stale if entry.symbol not in current)
    return DirectoryLoad(
        added=added,
        updated=len(stale) - added,
        unchanged=len(rows) - len(stale),
        kept=len(current.keys() - rows.keys()),
    )
