"""`manage.py load_symbols`: fill the symbol directory from pytickersymbols (real listed stocks)."""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from pytickersymbols import PyTickerSymbols

from streaming.models import Symbol
from streaming.symbols import SYMBOL_RE


class Command(BaseCommand):
    help = "Load (or refresh) the symbol directory from the pytickersymbols package."

    def handle(self, *args: Any, **options: Any) -> None:
        rows = directory_rows()
        with transaction.atomic():
            existing = set(Symbol.objects.values_list("symbol", flat=True))
            Symbol.objects.bulk_create(
                [Symbol(**row) for row in rows.values()],
                update_conflicts=True,
                unique_fields=["symbol"],
                update_fields=["name", "exchange", "country", "indices", "isin"],
                batch_size=500,
            )
        added = len(set(rows) - existing)
        self.stdout.write(f"Symbol directory: {len(rows)} symbols ({added} new).")


def directory_rows() -> dict[str, dict[str, Any]]:
    """One row per ticker, with every index it belongs to."""
    source = PyTickerSymbols()
    indices: dict[str, set[str]] = {}
    for index in source.get_all_indices():
        for stock in source.get_stocks_by_index(index):
            if stock.get("symbol"):
                indices.setdefault(stock["symbol"].upper(), set()).add(index)
    rows: dict[str, dict[str, Any]] = {}
    for stock in source.get_all_stocks():
        symbol = str(stock.get("symbol") or "").upper()
        if not SYMBOL_RE.fullmatch(symbol) or symbol in rows:
            continue
        listings = stock.get("symbols") or []
        google = next((s.get("google", "") for s in listings if ":" in s.get("google", "")), "")
        rows[symbol] = {
            "symbol": symbol,
            "name": str(stock.get("name", symbol))[:200],
            "exchange": google.split(":")[0][:20],
            "country": str(stock.get("country") or "")[:60],
            "indices": sorted(indices.get(symbol, ())),
            "isin": next(iter(stock.get("isins") or []), "")[:12],
        }
    return rows
