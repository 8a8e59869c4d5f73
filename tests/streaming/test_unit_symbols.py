"""The symbol directory (loaded by load_symbols) and the validation every subscription goes through."""

from io import StringIO

import pytest
from django.core.management import call_command

from streaming import symbols as symbols_module
from streaming.models import Symbol
from streaming.symbols import Rejection, known_symbols, symbols_validate

pytestmark = pytest.mark.django_db


def load_symbols() -> str:
    out = StringIO()
    call_command("load_symbols", stdout=out)
    return out.getvalue()


def test_the_directory_holds_real_listed_stocks() -> None:
    assert Symbol.objects.count() > 1700
    apple = Symbol.objects.get(symbol="AAPL")
    assert apple.name.startswith("Apple")
    assert {"NASDAQ 100", "S&P 500"} <= set(apple.indices)
    assert apple.isin == "US0378331005"
    assert {"AAPL", "MSFT"} <= known_symbols()
    assert len(known_symbols()) == Symbol.objects.count()


def test_every_directory_symbol_is_a_valid_upper_case_ticker() -> None:
    tickers = list(Symbol.objects.values_list("symbol", flat=True))
    assert all(symbols_module.SYMBOL_RE.fullmatch(t) for t in tickers)
    assert symbols_validate(tickers) == (sorted(tickers), [])


def test_validate_upper_cases_deduplicates_and_keeps_order() -> None:
    accepted, rejected = symbols_validate(["msft", "AAPL", " aapl ", "Msft", "ko", "AAPL"])
    assert accepted == ["MSFT", "AAPL", "KO"]
    assert rejected == []


def test_validate_rejects_unknown_symbols() -> None:
    accepted, rejected = symbols_validate(["AAPL", "zzzzq", "NOPE1"])
    assert accepted == ["AAPL"]
    assert rejected == [Rejection("ZZZZQ", "unknown_symbol"), Rejection("NOPE1", "unknown_symbol")]
    assert rejected[0].as_dict() == {"symbol": "ZZZZQ", "reason": "unknown_symbol"}


@pytest.mark.parametrize(
    ("raw", "reported"),
    [
        ("$$$", "$$$"),
        ("A" * 13, "A" * 13),
        ("X" * 40, "X" * 20),  # the echo is cut to 20 characters
        (".AAPL", ".AAPL"),
        ("AA PL", "AA PL"),
        ("aapl;drop", "AAPL;DROP"),
        (5, "5"),
        (None, "None"),
        (["AAPL"], "['AAPL']"),
        ({"symbol": "AAPL"}, "{'symbol': 'AAPL'}"),
        (3.5, "3.5"),
    ],
)
def test_validate_rejects_malformed_symbols(raw: object, reported: str) -> None:
    accepted, rejected = symbols_validate(["AAPL", raw])
    assert accepted == ["AAPL"]
    assert rejected == [Rejection(reported, "invalid_symbol")]
    assert len(rejected[0].symbol) <= 20


def test_validate_skips_blank_entries_and_accepts_the_longest_tickers() -> None:
    accepted, rejected = symbols_validate(["", "   ", "AAPL"])
    assert (accepted, rejected) == (["AAPL"], [])
    longest = max(known_symbols(), key=len)
    assert symbols_validate([longest.lower()]) == ([longest], [])


def test_validate_of_nothing() -> None:
    assert symbols_validate([]) == ([], [])


def test_load_symbols_is_idempotent() -> None:
    def snapshot() -> list[tuple[object, ...]]:
        return list(Symbol.objects.order_by("symbol").values_list("symbol", "name", "exchange", "indices", "isin"))

    before = snapshot()
    first, second = load_symbols(), load_symbols()
    assert "(0 new)" in first
    assert "(0 new)" in second
    assert f"{len(before)} symbols" in second
    assert snapshot() == before


def test_load_symbols_counts_and_restores_missing_rows() -> None:
    Symbol.objects.filter(symbol__in=["AAPL", "MSFT"]).delete()
    Symbol.objects.filter(symbol="KO").update(name="Changed", indices=[])
    assert "(2 new)" in load_symbols()
    assert Symbol.objects.filter(symbol__in=["AAPL", "MSFT"]).count() == 2
    ko = Symbol.objects.get(symbol="KO")
    assert ko.name != "Changed"
    assert ko.indices
    assert "(0 new)" in load_symbols()
