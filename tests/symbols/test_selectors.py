"""Validation for every subscription and watchlist edit: upper-cased, de-duplicated, refusals with reasons."""

from typing import Any, ClassVar

import pytest

from symbols import selectors
from symbols.models import Symbol
from symbols.selectors import SYMBOL_RE, Rejection, known_symbols, symbols_validate

pytestmark = pytest.mark.django_db


def test_known_symbols_are_the_directory() -> None:
    assert {"AAPL", "MSFT", "HSBA.L", "7203.T"} <= known_symbols().keys()
    assert len(known_symbols()) == Symbol.objects.count()


def test_every_directory_symbol_is_a_valid_upper_case_ticker() -> None:
    tickers = list(Symbol.objects.values_list("symbol", flat=True))
    assert all(SYMBOL_RE.fullmatch(t) for t in tickers)
    assert symbols_validate(tickers) == (sorted(tickers), [])


def test_validate_upper_cases_deduplicates_and_keeps_order() -> None:
    accepted, rejected = symbols_validate(["msft", "AAPL", " aapl ", "Msft", "ko", "AAPL"])
    assert accepted == ["MSFT", "AAPL", "KO"]
    assert rejected == []


def test_a_refused_symbol_is_reported_once() -> None:
    accepted, rejected = symbols_validate(["zzzzq", "ZZZZQ", " zzzzq", "$$$", "$$$"])
    assert accepted == []
    assert rejected == [Rejection("ZZZZQ", "unknown_symbol"), Rejection("$$$", "invalid_symbol")]


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


class Counted(str):
    """A ticker that counts how often it is compared: de-duplicating against a list compares each to all before it."""

    comparisons: ClassVar[int] = 0

    def strip(self, chars: Any = None) -> "Counted":
        return Counted(str.strip(self, chars))

    def upper(self) -> "Counted":
        return Counted(str.upper(self))

    def __eq__(self, other: object) -> bool:
        Counted.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_validation_is_linear_in_the_number_of_symbols() -> None:
    known = sorted(known_symbols())[:1000]
    requested = [Counted(s.lower()) for s in known] + [Counted(f"NOPE{i}") for i in range(1000)]
    Counted.comparisons = 0

    accepted, rejected = symbols_validate(requested)

    assert accepted == known
    assert len(rejected) == 1000
    # One comparison for each known ticker's match in the directory set; a list would need ~2 million.
    assert Counted.comparisons <= len(requested)


def test_the_directory_is_read_again_after_five_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "AAPL" in known_symbols()
    monkeypatch.setattr(selectors, "_known", selectors._known)  # put back after the test, without ZZTOP
    Symbol.objects.create(symbol="ZZTOP", name="Not listed anywhere")
    assert "ZZTOP" not in known_symbols()  # the per-process copy

    monkeypatch.setattr(selectors, "_loaded_at", selectors._loaded_at - selectors.CACHE_SECONDS - 1)

    assert "ZZTOP" in known_symbols()
