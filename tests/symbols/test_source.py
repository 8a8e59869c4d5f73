"""The directory's source: each pytickersymbols stock becomes one row showing its primary (home-market) listing."""

from functools import cache
from typing import Any

import pytest
from pytickersymbols import PyTickerSymbols

from symbols.source import Listing, directory_rows, primary_listing


@cache
def stocks() -> dict[str, dict[str, Any]]:
    """The real pytickersymbols data, by the stock's own ticker (first one wins, as in the load)."""
    found: dict[str, dict[str, Any]] = {}
    for stock in PyTickerSymbols().get_all_stocks():
        found.setdefault(str(stock.get("symbol") or ""), stock)
    return found


@pytest.mark.parametrize(
    ("symbol", "listing"),
    [
        # Listed first in the data: FRA:APC (Frankfurt, in euros); the home market is Nasdaq.
        ("AAPL", Listing("NASDAQ", "AAPL")),
        # Frankfurt, NYSE (the ADR), London and OTC listings: London's is the one HSBA.L names.
        ("HSBA.L", Listing("LON", "HSBA")),
        # The data lists Frankfurt, NYSE and OTC copies but no Xetra listing: the .DE suffix names it.
        ("SAP.DE", Listing("ETR", "SAP")),
        # The data's own listing says OTCMKTS:KO; Coca-Cola trades on the NYSE ("traded as NYSE : KO").
        ("KO", Listing("NYSE", "KO")),
        ("7203.T", Listing("TYO", "7203")),
        # Yahoo writes BRK-B, Google BRK.B: the NYSE listing, not Berkshire's Frankfurt ones.
        ("BRK.B", Listing("NYSE", "BRK.B")),
    ],
)
def test_the_primary_listing_is_the_home_market_one(symbol: str, listing: Listing) -> None:
    assert primary_listing(stocks()[symbol]) == listing


def test_no_exchange_is_made_up_when_the_data_names_none() -> None:
    acadia = stocks()["AKR"]  # Acadia Realty Trust: a bare "AKR" listing and no "traded as" line
    assert [entry["google"] for entry in acadia["symbols"]] == ["AKR"]

    assert primary_listing(acadia) == Listing("", "AKR")


def test_rows_carry_the_primary_listing_and_every_index() -> None:
    rows = directory_rows()

    assert len(rows) > 1700
    assert all(row["symbol"] == symbol for symbol, row in rows.items())
    apple = rows["AAPL"]
    assert (apple["exchange"], apple["exchange_ticker"]) == ("NASDAQ", "AAPL")
    assert {"NASDAQ 100", "S&P 500"} <= set(apple["indices"])
    assert apple["isin"] == "US0378331005"
    # Frankfurt was the exchange of every stock listed there too; now only of those it is all we know.
    assert sum(row["exchange"] == "FRA" for row in rows.values()) < 50


def test_a_ticker_two_companies_share_in_the_data_keeps_the_first() -> None:
    names = [stock.get("name") for stock in PyTickerSymbols().get_all_stocks() if stock.get("symbol") == "APAM"]
    assert names == ["Aperam", "Artisan Partners"]

    assert directory_rows()["APAM"]["name"] == "Aperam"
