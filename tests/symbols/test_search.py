"""Symbol search for autocomplete: the directory by ticker prefix or company name, best first."""

from typing import Any

import pytest

from symbols.selectors import symbol_entries, symbol_names, symbol_search

pytestmark = pytest.mark.django_db


def tickers(query: str, **kwargs: Any) -> list[str]:
    return [entry.symbol for entry in symbol_search(query=query, **kwargs)]


def test_the_exact_ticker_comes_first_then_ticker_prefixes_best_known_first() -> None:
    found = tickers("ms")

    assert found[0] == "MS"
    prefixed = [s for s in found if s.startswith("MS")]
    assert found[: len(prefixed)] == prefixed  # every ticker prefix before any name match
    assert {"MSFT", "MSI", "MSCI", "MSTR"} <= set(prefixed)
    assert found.index("MSFT") < found.index("MSI")  # Microsoft is in more indices than Motorola


def test_ticker_prefixes_come_before_company_names() -> None:
    found = tickers("app")

    assert found[0] == "APP"  # AppLovin: the exact ticker
    assert found[1:4] == ["AAPL", "AMAT", "APLE"]  # Apple Inc., Applied Materials, Apple Hospitality


def test_a_company_name_matches_anywhere_in_it_word_starts_first() -> None:
    found = tickers("motor")

    assert found[0] == "MSI"  # Motorola Solutions: the name starts with it
    assert {"F", "GM", "7211.T"} <= set(found)  # Ford Motor Company, General Motors, Mitsubishi Motors


def test_search_ignores_case_and_surrounding_space() -> None:
    assert tickers("  aPpLe inc ")[0] == "AAPL"
    assert tickers("brk.b") == ["BRK.B"]


def test_at_most_ten_results_each_once() -> None:
    found = tickers("a")

    assert len(found) == 10
    assert len(set(found)) == 10
    assert found[0] == "A"  # Agilent Technologies


def test_a_smaller_limit_is_kept_and_a_zero_one_finds_nothing() -> None:
    assert tickers("ms", limit=3) == tickers("ms")[:3]
    assert tickers("ms", limit=0) == []


@pytest.mark.parametrize("query", ["", "   ", "%", "_", "%%%", "\\", "zzzzzzzzz", "x" * 500])
def test_empty_odd_or_unmatched_queries_find_nothing(query: str) -> None:
    assert tickers(query) == []


def test_like_wildcards_are_taken_literally() -> None:
    assert tickers("A_PL") == []
    assert tickers("A%") == []


def test_results_show_the_primary_listing() -> None:
    apple, hsbc, toyota = (symbol_search(query=q)[0] for q in ("AAPL", "HSBA.L", "7203.T"))

    assert (apple.exchange, apple.exchange_ticker) == ("NASDAQ", "AAPL")
    assert (hsbc.exchange, hsbc.exchange_ticker) == ("LON", "HSBA")
    assert (toyota.exchange, toyota.exchange_ticker) == ("TYO", "7203")


def test_entries_and_names_leave_out_tickers_not_in_the_directory() -> None:
    entries = symbol_entries(symbols=["SAP.DE", "AAPL", "ZZZZQ"])

    assert set(entries) == {"SAP.DE", "AAPL"}
    assert (entries["SAP.DE"].name, entries["SAP.DE"].exchange) == ("SAP", "ETR")
    assert symbol_names(symbols=["KO", "ZZZZQ"]) == {"KO": "The Coca-Cola Company"}
