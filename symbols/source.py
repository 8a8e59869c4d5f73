"""The directory's source: real listed stocks from the pytickersymbols package, one row per ticker."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytickersymbols import PyTickerSymbols

from .selectors import SYMBOL_RE

# pytickersymbols names each stock by its home-market Yahoo ticker (AAPL, SAP.DE, HSBA.L, 7203.T)
# and lists its listings, home and elsewhere (Frankfurt, OTC, London), each in Yahoo and Google
# Finance form. When the home listing is not among them (SAP.DE has only SAP.F, NYSE:SAP, …), the
# ticker's suffix names its exchange: Yahoo suffix -> Google Finance exchange code.
YAHOO_SUFFIX_EXCHANGES = {
    "AS": "AMS",
    "BR": "EBR",
    "DE": "ETR",
    "F": "FRA",
    "HE": "HEL",
    "L": "LON",
    "MC": "BME",
    "MI": "BIT",
    "PA": "EPA",
    "ST": "STO",
    "SW": "SWX",
    "T": "TYO",
}
# For US stocks, Wikipedia's "traded as" line ("NYSE : KO DJIA component …") is the better source:
# the listings say OTCMKTS for KO and DIS, and miss the moves of WMT, LIN and ROP to Nasdaq; and 838
# of the 1,837 stocks (most of the S&P 600) list only a bare Google ticker ("AOS"), no exchange.
_TRADED_AS = re.compile(r"\b(NYSE|Nasdaq)\s*:\s*([A-Z0-9.\-]+)")
_TRADED_AS_EXCHANGES = {"NYSE": "NYSE", "Nasdaq": "NASDAQ"}


@dataclass(frozen=True)
class Listing:
    """Where a stock trades: a Google Finance exchange code ("" when unknown) and the ticker there."""

    exchange: str
    ticker: str


def primary_listing(stock: Mapping[str, Any]) -> Listing:
    """The listing on the stock's home market: the one its own ticker names, not a Frankfurt or OTC copy."""
    symbol = str(stock.get("symbol") or "").upper()
    for traded_as in _TRADED_AS.finditer(str((stock.get("metadata") or {}).get("traded_as") or "")):
        if traded_as.group(2) == symbol:
            return Listing(_TRADED_AS_EXCHANGES[traded_as.group(1)], symbol)
    listed = [
        (str(entry.get("yahoo") or "").upper(), listing)
        for entry in stock.get("symbols") or []
        if (listing := _google_listing(str(entry.get("google") or "")))
    ]
    for yahoo, listing in listed:
        if yahoo == symbol:
            return listing
    for _, listing in listed:
        if listing.ticker == symbol:  # BRK.B: NYSE:BRK.B on Google, BRK-B on Yahoo
            return listing
    base, _, suffix = symbol.rpartition(".")
    if base and suffix in YAHOO_SUFFIX_EXCHANGES:
        return Listing(YAHOO_SUFFIX_EXCHANGES[suffix], base)
    return Listing("", symbol)


def directory_rows() -> dict[str, dict[str, Any]]:
    """One row per ticker, by ticker, with its primary listing and every index it belongs to."""
    source = PyTickerSymbols()
    indices: dict[str, set[str]] = {}
    for index in source.get_all_indices():
        for stock in source.get_stocks_by_index(index):
            if stock.get("symbol"):
                indices.setdefault(stock["symbol"].upper(), set()).add(index)
    rows: dict[str, dict[str, Any]] = {}
    for stock in source.get_all_stocks():
        symbol = str(stock.get("symbol") or "").upper()
        # Two companies share a ticker in the data (APAM, 7186.T): the first keeps it.
        if not SYMBOL_RE.fullmatch(symbol) or symbol in rows:
            continue
        listing = primary_listing(stock)
        rows[symbol] = {
            "symbol": symbol,
            "name": str(stock.get("name") or symbol)[:200],
            "exchange": listing.exchange[:20],
            "exchange_ticker": listing.ticker[:12],
            "country": str(stock.get("country") or "")[:60],
            "indices": sorted(indices.get(symbol, ())),
            "isin": next(iter(stock.get("isins") or []), "")[:12],
        }
    return rows


def _google_listing(google: str) -> Listing | None:
    """A listing from Google Finance's "NASDAQ:AAPL"; None for a bare "AAPL" or "-", which name no exchange."""
    exchange, _, ticker = google.strip().upper().partition(":")
    return Listing(exchange, ticker) if exchange and ticker else None
