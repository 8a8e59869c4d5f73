"""Watchlist services: every write, every limit and every bad input; a refusal changes nothing."""

from typing import Any

import pytest
from django.core.exceptions import ValidationError

import symbols.selectors
from billing.models import Plan
from tenants.db import tenant_connection
from tenants.models import Organisation
from tests.watchlists.conftest import InSchema, stored
from watchlists.models import Watchlist
from watchlists.selectors import watchlist_get, watchlist_list
from watchlists.services import (
    SYMBOL_LIMIT,
    WATCHLIST_LIMIT,
    watchlist_add_symbols,
    watchlist_create,
    watchlist_delete,
    watchlist_remove_symbol,
    watchlist_rename,
    watchlist_reorder,
)

pytestmark = pytest.mark.django_db


def refusal(exc_info: pytest.ExceptionInfo[ValidationError]) -> tuple[str, set[str | None]]:
    """The refusal's text, and its codes."""
    errors = exc_info.value.update_error_dict({})
    return " ".join(exc_info.value.messages), {e.code for field in errors.values() for e in field}


# -- create ------------------------------------------------------------------------------------------
def test_create_makes_a_watchlist_with_its_creator_and_normalised_symbols(globex: Organisation, in_schema: InSchema):
    with in_schema(globex):
        watchlist = watchlist_create(
            organisation=globex, name="  Tech   leaders ", created_by_id=42, symbols=["aapl", " msft", "AAPL"]
        )
        assert watchlist_get(watchlist_id=watchlist.pk) == watchlist

    assert watchlist.name == "Tech leaders"
    assert watchlist.symbols == ["AAPL", "MSFT"]
    assert watchlist.created_by_id == 42


@pytest.mark.parametrize(("name", "message"), [("   ", "Give the watchlist a name."), ("x" * 81, "80 characters")])
def test_create_refuses_a_blank_or_long_name(globex: Organisation, in_schema: InSchema, name: str, message: str):
    with in_schema(globex), pytest.raises(ValidationError) as exc_info:
        watchlist_create(organisation=globex, name=name)

    assert message in exc_info.value.message_dict["name"][0]
    with in_schema(globex):
        assert not Watchlist.objects.exists()


def test_create_refuses_a_name_already_used_in_any_case(globex: Organisation, in_schema: InSchema, make_watchlist):
    make_watchlist(globex, "Tech")

    with in_schema(globex), pytest.raises(ValidationError) as exc_info:
        watchlist_create(organisation=globex, name="TECH")

    assert exc_info.value.message_dict["name"] == ["There is already a watchlist called “TECH”; choose another name."]
    with in_schema(globex):
        assert Watchlist.objects.count() == 1


def test_create_refuses_past_the_plans_watchlist_limit(acme: Organisation, in_schema: InSchema, make_watchlist):
    make_watchlist(acme, "First")

    with in_schema(acme), pytest.raises(ValidationError) as exc_info:
        watchlist_create(organisation=acme, name="Second")

    text, codes = refusal(exc_info)
    assert codes == {WATCHLIST_LIMIT}
    assert text == (
        "Watchlist limit reached: the Free plan allows 1 watchlist and Acme Capital already has 1. "
        "Delete one, or upgrade your plan for more."
    )
    with in_schema(acme):
        assert [w.name for w in watchlist_list()] == ["First"]


def test_create_reads_the_plan_as_it_is_now(acme: Organisation, in_schema: InSchema, make_watchlist):
    make_watchlist(acme, "First")
    Plan.objects.filter(pk=acme.plan_id).update(max_watchlists=2)

    with in_schema(acme):
        watchlist_create(organisation=acme, name="Second")
        assert Watchlist.objects.count() == 2


def test_create_checks_its_symbols_too(acme: Organisation, in_schema: InSchema):
    with in_schema(acme), pytest.raises(ValidationError) as exc_info:
        watchlist_create(organisation=acme, name="Too many", symbols=["AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META"])

    assert refusal(exc_info)[1] == {SYMBOL_LIMIT}
    with in_schema(acme):
        assert not Watchlist.objects.exists()


# -- rename ------------------------------------------------------------------------------------------
def test_rename_changes_the_name_only(globex: Organisation, in_schema: InSchema, make_watchlist):
    watchlist = make_watchlist(globex, "Tech", ("AAPL", "MSFT"))

    with in_schema(globex):
        watchlist_rename(organisation=globex, watchlist_id=watchlist.pk, name="Big tech")

    after = stored(globex, watchlist.pk)
    assert after is not None
    assert (after.name, after.symbols) == ("Big tech", ["AAPL", "MSFT"])


def test_rename_may_change_only_the_case(globex: Organisation, in_schema: InSchema, make_watchlist):
    watchlist = make_watchlist(globex, "tech")

    with in_schema(globex):
        watchlist_rename(organisation=globex, watchlist_id=watchlist.pk, name="Tech")

    assert stored(globex, watchlist.pk).name == "Tech"  # type: ignore[union-attr]


def test_rename_refuses_another_watchlists_name(globex: Organisation, in_schema: InSchema, make_watchlist):
    make_watchlist(globex, "Tech")
    energy = make_watchlist(globex, "Energy")

    with in_schema(globex), pytest.raises(ValidationError) as exc_info:
        watchlist_rename(organisation=globex, watchlist_id=energy.pk, name="tech")

    assert "There is already a watchlist called “tech”" in exc_info.value.message_dict["name"][0]
    assert stored(globex, energy.pk).name == "Energy"  # type: ignore[union-attr]


# -- add symbols -------------------------------------------------------------------------------------
def test_add_symbols_appends_them_in_the_order_given(globex: Organisation, in_schema: InSchema, make_watchlist):
    watchlist = make_watchlist(globex, "Tech", ("MSFT",))

    with in_schema(globex):
        watchlist_add_symbols(organisation=globex, watchlist_id=watchlist.pk, symbols=["nvda", "AAPL", "nvda"])

    assert stored(globex, watchlist.pk).symbols == ["MSFT", "NVDA", "AAPL"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("symbols", "message"),
    [
        (["AAPL", "NOPEX", "ZZZZQ"], "Not in the symbol directory: NOPEX, ZZZZQ."),
        (["AAPL", "$$$"], "Not a ticker: $$$."),
        (["AAPL", "MSFT"], "Already in this watchlist: MSFT."),
        ([], "Name at least one symbol to add"),
        (["  "], "Name at least one symbol to add"),
    ],
    ids=["unknown", "invalid", "duplicate", "empty", "blank"],
)
def test_add_symbols_refuses_bad_input_and_adds_nothing(
    globex: Organisation, in_schema: InSchema, make_watchlist, symbols: list[str], message: str
):
    watchlist = make_watchlist(globex, "Tech", ("MSFT",))

    with in_schema(globex), pytest.raises(ValidationError) as exc_info:
        watchlist_add_symbols(organisation=globex, watchlist_id=watchlist.pk, symbols=symbols)

    assert message in " ".join(exc_info.value.message_dict["symbols"])
    assert stored(globex, watchlist.pk).symbols == ["MSFT"]  # type: ignore[union-attr]


def test_add_symbols_refuses_past_the_plans_symbol_limit(acme: Organisation, in_schema: InSchema, make_watchlist):
    watchlist = make_watchlist(acme, "Tech", ("AAPL", "MSFT", "NVDA", "AMZN"))

    with in_schema(acme), pytest.raises(ValidationError) as exc_info:
        watchlist_add_symbols(organisation=acme, watchlist_id=watchlist.pk, symbols=["TSLA", "META"])

    text, codes = refusal(exc_info)
    assert codes == {SYMBOL_LIMIT}
    assert text == (
        "Symbol limit reached: the Free plan allows 5 symbols per watchlist (what one stream can follow) and "
        "this watchlist has 4, "
        "so 1 more can be added, not 2. Add fewer, or upgrade your plan for more."
    )
    assert stored(acme, watchlist.pk).symbols == ["AAPL", "MSFT", "NVDA", "AMZN"]  # type: ignore[union-attr]


def test_add_symbols_refuses_any_more_once_full(acme: Organisation, in_schema: InSchema, make_watchlist):
    watchlist = make_watchlist(acme, "Tech", ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA"))

    with in_schema(acme), pytest.raises(ValidationError) as exc_info:
        watchlist_add_symbols(organisation=acme, watchlist_id=watchlist.pk, symbols=["META"])

    assert "this watchlist already has 5. Remove some first, or upgrade your plan for more." in refusal(exc_info)[0]


def test_add_symbols_fills_the_plan_exactly(acme: Organisation, in_schema: InSchema, make_watchlist):
    watchlist = make_watchlist(acme, "Tech", ("AAPL", "MSFT", "NVDA"))

    with in_schema(acme):
        watchlist_add_symbols(organisation=acme, watchlist_id=watchlist.pk, symbols=["AMZN", "TSLA"])

    assert len(stored(acme, watchlist.pk).symbols) == 5  # type: ignore[union-attr]


def test_validating_symbols_with_a_cold_cache_stays_in_the_tenant_schema(
    globex: Organisation, in_schema: InSchema, make_watchlist, monkeypatch: pytest.MonkeyPatch
):
    watchlist = make_watchlist(globex, "Tech")
    monkeypatch.setattr(symbols.selectors, "_known", frozenset())

    with in_schema(globex):
        watchlist_add_symbols(organisation=globex, watchlist_id=watchlist.pk, symbols=["AAPL"])
        assert tenant_connection().schema_name == globex.schema_name

    assert stored(globex, watchlist.pk).symbols == ["AAPL"]  # type: ignore[union-attr]


# -- remove, reorder, delete ---------------------------------------------------------------------------
def test_remove_symbol_takes_out_just_that_one(globex: Organisation, in_schema: InSchema, make_watchlist):
    watchlist = make_watchlist(globex, "Tech", ("AAPL", "MSFT", "NVDA"))

    with in_schema(globex):
        watchlist_remove_symbol(organisation=globex, watchlist_id=watchlist.pk, symbol="msft")

    assert stored(globex, watchlist.pk).symbols == ["AAPL", "NVDA"]  # type: ignore[union-attr]


def test_remove_symbol_refuses_one_not_in_the_watchlist(globex: Organisation, in_schema: InSchema, make_watchlist):
    watchlist = make_watchlist(globex, "Tech", ("AAPL",))

    with in_schema(globex), pytest.raises(ValidationError) as exc_info:
        watchlist_remove_symbol(organisation=globex, watchlist_id=watchlist.pk, symbol="TSLA")

    assert exc_info.value.message_dict["symbol"] == ["TSLA is not in “Tech” (any more); nothing was changed."]
    assert stored(globex, watchlist.pk).symbols == ["AAPL"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("symbol", "position", "expected"),
    [
        ("NVDA", 1, ["AAPL", "NVDA", "MSFT", "AMZN"]),  # up one
        ("AAPL", 1, ["MSFT", "AAPL", "NVDA", "AMZN"]),  # down one
        ("AMZN", 0, ["AMZN", "AAPL", "MSFT", "NVDA"]),  # to the top
        ("AAPL", 99, ["MSFT", "NVDA", "AMZN", "AAPL"]),  # past the end: to the bottom
        ("aapl", -5, ["AAPL", "MSFT", "NVDA", "AMZN"]),  # already first: no change
    ],
)
def test_reorder_moves_one_symbol_and_keeps_the_others_in_order(
    globex: Organisation, in_schema: InSchema, make_watchlist, symbol: str, position: int, expected: list[str]
):
    watchlist = make_watchlist(globex, "Tech", ("AAPL", "MSFT", "NVDA", "AMZN"))

    with in_schema(globex):
        watchlist_reorder(organisation=globex, watchlist_id=watchlist.pk, symbol=symbol, position=position)

    assert stored(globex, watchlist.pk).symbols == expected  # type: ignore[union-attr]


def test_reorder_refuses_a_symbol_not_in_the_watchlist(globex: Organisation, in_schema: InSchema, make_watchlist):
    watchlist = make_watchlist(globex, "Tech", ("AAPL", "MSFT"))

    with in_schema(globex), pytest.raises(ValidationError) as exc_info:
        watchlist_reorder(organisation=globex, watchlist_id=watchlist.pk, symbol="TSLA", position=0)

    assert "TSLA is not in “Tech”" in exc_info.value.messages[0]
    assert stored(globex, watchlist.pk).symbols == ["AAPL", "MSFT"]  # type: ignore[union-attr]


def test_delete_removes_the_watchlist(globex: Organisation, in_schema: InSchema, make_watchlist):
    keep = make_watchlist(globex, "Keep")
    drop = make_watchlist(globex, "Drop", ("AAPL",))

    with in_schema(globex):
        deleted = watchlist_delete(organisation=globex, watchlist_id=drop.pk)

    assert deleted.name == "Drop"
    assert stored(globex, drop.pk) is None
    assert stored(globex, keep.pk) is not None


def test_a_deleted_watchlist_frees_its_place_in_the_plan(acme: Organisation, in_schema: InSchema, make_watchlist):
    first = make_watchlist(acme, "First")

    with in_schema(acme):
        watchlist_delete(organisation=acme, watchlist_id=first.pk)
        watchlist_create(organisation=acme, name="Second")
        assert [w.name for w in watchlist_list()] == ["Second"]


# -- ids and schemas -----------------------------------------------------------------------------------
WRITES: dict[str, Any] = {
    "rename": lambda org, pk: watchlist_rename(organisation=org, watchlist_id=pk, name="X"),
    "add": lambda org, pk: watchlist_add_symbols(organisation=org, watchlist_id=pk, symbols=["AAPL"]),
    "remove": lambda org, pk: watchlist_remove_symbol(organisation=org, watchlist_id=pk, symbol="AAPL"),
    "reorder": lambda org, pk: watchlist_reorder(organisation=org, watchlist_id=pk, symbol="AAPL", position=0),
    "delete": lambda org, pk: watchlist_delete(organisation=org, watchlist_id=pk),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_a_forged_id_is_no_watchlist(globex: Organisation, in_schema: InSchema, write: Any):
    with in_schema(globex), pytest.raises(Watchlist.DoesNotExist):
        write(globex, 987_654)


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_another_organisations_watchlist_is_out_of_reach_by_id(
    acme: Organisation, globex: Organisation, in_schema: InSchema, make_watchlist, write: Any
):
    theirs = make_watchlist(acme, "Acme secrets", ("AAPL",))

    with in_schema(globex):
        assert watchlist_get(watchlist_id=theirs.pk) is None
        with pytest.raises(Watchlist.DoesNotExist):
            write(globex, theirs.pk)

    after = stored(acme, theirs.pk)
    assert after is not None
    assert (after.name, after.symbols) == ("Acme secrets", ["AAPL"])


def test_the_same_id_in_two_organisations_names_two_watchlists(
    acme: Organisation, globex: Organisation, in_schema: InSchema, make_watchlist
):
    mine = make_watchlist(globex, "Globex list", ("MSFT",))
    theirs = make_watchlist(acme, "Acme list", ("AAPL",))
    assert mine.pk == theirs.pk  # each schema numbers its own rows

    with in_schema(globex):
        watchlist_add_symbols(organisation=globex, watchlist_id=mine.pk, symbols=["NVDA"])

    assert stored(globex, mine.pk).symbols == ["MSFT", "NVDA"]  # type: ignore[union-attr]
    assert stored(acme, theirs.pk).symbols == ["AAPL"]  # type: ignore[union-attr]


def test_a_write_refuses_to_run_in_another_organisations_schema(
    acme: Organisation, globex: Organisation, in_schema: InSchema
):
    with in_schema(acme), pytest.raises(RuntimeError, match="org_globex"):
        watchlist_create(organisation=globex, name="Wrong schema")

    with in_schema(acme):
        assert not Watchlist.objects.exists()


def test_the_list_is_sorted_by_name_ignoring_case(globex: Organisation, in_schema: InSchema, make_watchlist):
    for name in ("energy", "Banks", "Tech"):
        make_watchlist(globex, name)

    with in_schema(globex):
        assert [w.name for w in watchlist_list()] == ["Banks", "energy", "Tech"]
