"""Loading the directory from pytickersymbols: real stocks with their primary listing; a second load changes nothing."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from symbols.models import Symbol
from symbols.services import DirectoryLoad, symbols_load

pytestmark = pytest.mark.django_db


def load_symbols(*args: str) -> str:
    out = StringIO()
    call_command("load_symbols", *args, stdout=out)
    return out.getvalue()


def row_versions() -> dict[str, str]:
    """Each row's xmin: the transaction that last wrote it, so any rewrite shows even with the same values."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT symbol, xmin::text FROM {Symbol._meta.db_table}")  # noqa: S608  (our own table name)
        return dict(cursor.fetchall())


def test_the_directory_holds_real_listed_stocks_at_their_home_exchange() -> None:
    assert Symbol.objects.count() > 1700
    apple = Symbol.objects.get(symbol="AAPL")
    assert apple.name.startswith("Apple")
    assert (apple.exchange, apple.exchange_ticker) == ("NASDAQ", "AAPL")  # was FRA, Apple's Frankfurt listing
    assert {"NASDAQ 100", "S&P 500"} <= set(apple.indices)
    assert apple.isin == "US0378331005"
    listings = dict(Symbol.objects.filter(symbol__in=["HSBA.L", "SAP.DE", "KO"]).values_list("symbol", "exchange"))
    assert listings == {"HSBA.L": "LON", "SAP.DE": "ETR", "KO": "NYSE"}


def test_a_second_load_writes_nothing_and_says_so() -> None:
    count = Symbol.objects.count()
    before = row_versions()

    output = load_symbols()

    assert output == f"Symbol directory: {count} symbols from pytickersymbols: 0 added, 0 updated, {count} unchanged.\n"
    assert row_versions() == before


def test_a_load_restores_deleted_and_edited_rows_and_touches_no_other() -> None:
    Symbol.objects.filter(symbol__in=["AAPL", "MSFT"]).delete()
    Symbol.objects.filter(symbol="KO").update(name="Changed", exchange="OTCMKTS", indices=[])
    before = row_versions()

    loaded = symbols_load()

    assert (loaded.added, loaded.updated, loaded.kept) == (2, 1, 0)
    assert Symbol.objects.filter(symbol__in=["AAPL", "MSFT"]).count() == 2
    ko = Symbol.objects.get(symbol="KO")
    assert (ko.name, ko.exchange) == ("The Coca-Cola Company", "NYSE")
    assert ko.indices
    after = row_versions()
    assert {s for s in before if before[s] != after[s]} == {"KO"}
    assert symbols_load() == DirectoryLoad(added=0, updated=0, unchanged=loaded.unchanged + 3, kept=0)


def test_tickers_the_source_no_longer_lists_are_kept() -> None:
    count = Symbol.objects.count()
    Symbol.objects.create(symbol="ZZTOP", name="Delisted Inc.")

    output = load_symbols()

    assert output.endswith(f"0 added, 0 updated, {count} unchanged; 1 no longer listed there, kept.\n")
    assert Symbol.objects.filter(symbol="ZZTOP").exists()


def test_a_quiet_load_prints_nothing() -> None:
    assert load_symbols("--verbosity", "0") == ""
