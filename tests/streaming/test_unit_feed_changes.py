"""Which messages the feed leader sends when its status moves on: none when nothing changed, one per
organisation concerned per change."""

from typing import Any

from streaming.feed import WatchIndex
from streaming.feed_changes import FeedChanges, unserved_items
from streaming.groups import control_group
from streaming.state import Watch

CLOSED = {"open": False, "last_close_ms": 1_000, "next_open_ms": 2_000}
OPEN = {"open": True, "last_close_ms": 1_000, "next_open_ms": None}

WATCHERS = WatchIndex.build(
    {Watch("acme", 0, "AAPL"), Watch("acme", 15, "MSFT"), Watch("globex", 0, "MSFT"), Watch("initech", 15, "TSLA")}
).schemas_by_symbol


def status(market: dict[str, Any] | None = None, unserved: dict[str, str] | None = None) -> dict[str, Any]:
    return {"provider": "alpaca", "market": market, "unserved": unserved or {}}


def test_the_index_names_each_symbols_organisations_at_every_delay() -> None:
    assert {"AAPL": {"acme"}, "MSFT": {"acme", "globex"}, "TSLA": {"initech"}} == WATCHERS


def test_nothing_changed_no_message() -> None:
    changes = FeedChanges()
    assert changes.messages(status(), WATCHERS) == []
    assert changes.messages(status(OPEN), WATCHERS) == []  # open is what connections assume
    assert changes.messages(status(None), WATCHERS) == []  # not known yet: nothing to tell


def test_the_market_closing_is_one_message_per_watching_organisation_then_none() -> None:
    changes = FeedChanges()
    closed = changes.messages(status(CLOSED), WATCHERS)
    assert closed == [
        (control_group(schema), {"type": "market.changed", "market": CLOSED})
        for schema in ("acme", "globex", "initech")
    ]
    assert changes.messages(status(CLOSED), WATCHERS) == []
    assert changes.messages(status(None), WATCHERS) == []  # a calendar that failed tells nothing
    reopened = changes.messages(status(OPEN), WATCHERS)
    assert [message for _, message in reopened] == [{"type": "market.changed", "market": OPEN}] * 3
    assert changes.messages(status(OPEN), WATCHERS) == []


def test_a_new_leader_starts_from_what_the_previous_one_stored() -> None:
    previous = status(CLOSED, {"MSFT": "symbol_limit"})
    assert FeedChanges.from_status(previous).messages(previous, WATCHERS) == []
    assert FeedChanges.from_status(None) == FeedChanges(market=None, unserved={})
    assert FeedChanges.from_status(None).market_open
    opened = FeedChanges.from_status(previous).messages(status(OPEN, {"MSFT": "symbol_limit"}), WATCHERS)
    assert [group for group, _ in opened] == [control_group(s) for s in ("acme", "globex", "initech")]


def test_a_symbol_no_longer_served_is_told_to_the_organisations_watching_it() -> None:
    changes = FeedChanges()
    told = changes.messages(status(unserved={"MSFT": "symbol_limit"}), WATCHERS)
    assert told == [
        (
            control_group("acme"),
            {"type": "unserved.changed", "symbols": ["MSFT"], "unserved": {"MSFT": "symbol_limit"}},
        ),
        (
            control_group("globex"),
            {"type": "unserved.changed", "symbols": ["MSFT"], "unserved": {"MSFT": "symbol_limit"}},
        ),
    ]
    assert changes.messages(status(unserved={"MSFT": "symbol_limit"}), WATCHERS) == []


def test_each_organisation_gets_every_unserved_symbol_it_watches_and_only_those() -> None:
    changes = FeedChanges(unserved={"MSFT": "symbol_limit"})
    told = changes.messages(status(unserved={"MSFT": "symbol_limit", "AAPL": "not_entitled", "ZZZ": "x"}), WATCHERS)
    assert told == [
        (
            control_group("acme"),
            {
                "type": "unserved.changed",
                "symbols": ["AAPL"],
                "unserved": {"MSFT": "symbol_limit", "AAPL": "not_entitled"},
            },
        )
    ]  # ZZZ changed too, but nobody watches it


def test_a_symbol_served_again_or_with_another_reason_is_a_change() -> None:
    changes = FeedChanges(unserved={"MSFT": "symbol_limit", "TSLA": "symbol_limit"})
    told = changes.messages(status(unserved={"TSLA": "not_entitled"}), WATCHERS)
    assert told == [
        (control_group("acme"), {"type": "unserved.changed", "symbols": ["MSFT"], "unserved": {}}),
        (control_group("globex"), {"type": "unserved.changed", "symbols": ["MSFT"], "unserved": {}}),
        (
            control_group("initech"),
            {"type": "unserved.changed", "symbols": ["TSLA"], "unserved": {"TSLA": "not_entitled"}},
        ),
    ]
    assert changes.messages(status(unserved={"TSLA": "not_entitled"}), WATCHERS) == []


def test_unserved_items_keep_the_streams_order_and_skip_served_symbols() -> None:
    unserved = {"MSFT": "symbol_limit", "AAPL": "unknown_symbol"}
    assert unserved_items(["TSLA", "MSFT", "AAPL"], unserved) == [
        {"symbol": "MSFT", "reason": "symbol_limit"},
        {"symbol": "AAPL", "reason": "unknown_symbol"},
    ]
    assert unserved_items(["TSLA"], unserved) == []


def test_organisations_that_start_watching_catch_up_only_on_what_differs_from_a_default_snapshot() -> None:
    changes = FeedChanges()
    assert changes.catch_up({"acme", "globex"}, WATCHERS) == []  # open, everything served
    changes.messages(status(CLOSED, {"MSFT": "symbol_limit", "TSLA": "not_entitled"}), WATCHERS)
    assert changes.catch_up({"globex"}, WATCHERS) == [
        (control_group("globex"), {"type": "market.changed", "market": CLOSED}),
        (
            control_group("globex"),
            {"type": "unserved.changed", "symbols": ["MSFT"], "unserved": {"MSFT": "symbol_limit"}},
        ),
    ]
    changes.messages(status(OPEN, {"TSLA": "not_entitled"}), WATCHERS)
    assert changes.catch_up({"acme", "globex"}, WATCHERS) == []  # neither watches TSLA
