"""The engine's index: crossings found by bisection, each alert once per cooldown, change % like prices."""

from dataclasses import dataclass

import pytest

from alerts.index import AlertIndex, Firing, Kind, Ladder, Rule

COOLDOWN_MS = 60_000


@dataclass(frozen=True)
class Q:
    symbol: str
    price: float
    change_pct: float
    ts: int


def rule(alert_id: int, kind: Kind, level: float, *, symbol: str = "AAPL", schema: str = "org_a") -> Rule:
    return Rule(schema, alert_id, symbol, kind, level, COOLDOWN_MS)


def feed(index: AlertIndex, *prices: float, symbol: str = "AAPL", delay: int = 0, start_ts: int = 0) -> list[Firing]:
    """Evaluate one quote per price, a second apart; every firing, in order."""
    fired: list[Firing] = []
    for n, price in enumerate(prices):
        fired += index.evaluate(delay, {symbol: Q(symbol, price, 0.0, start_ts + n * 1000)})
    return fired


def ids(firings: list[Firing]) -> list[int]:
    return [f.rule.alert_id for f in firings]


def test_a_rising_price_fires_the_above_levels_it_crossed_and_nothing_else() -> None:
    index = AlertIndex()
    levels = {1: 99.0, 2: 100.5, 3: 101.0, 4: 102.0, 5: 103.0}
    index.schema_replace("org_a", 0, [rule(i, Kind.PRICE_ABOVE, level) for i, level in levels.items()])
    index.schema_replace("org_b", 0, [rule(9, Kind.PRICE_BELOW, 100.5, schema="org_b")])

    fired = feed(index, 100.0, 102.0)

    assert ids(fired) == [2, 3, 4]  # (100, 102]: the level it reached counts, the one it started at would not
    assert fired[0].price == 102.0
    assert fired[0].quote_ts == 1000


def test_a_falling_price_fires_the_below_levels_in_between() -> None:
    index = AlertIndex()
    index.schema_replace("org_a", 0, [rule(1, Kind.PRICE_BELOW, 99.0), rule(2, Kind.PRICE_BELOW, 98.0),
                                      rule(3, Kind.PRICE_BELOW, 100.0), rule(4, Kind.PRICE_ABOVE, 98.5)])  # fmt: skip

    assert ids(feed(index, 100.0, 98.0)) == [2, 1]  # [98, 100): 100 was where it started


def test_the_first_quote_only_sets_the_starting_point() -> None:
    index = AlertIndex()
    index.schema_replace("org_a", 0, [rule(1, Kind.PRICE_ABOVE, 100.0)])

    assert feed(index, 150.0) == []  # already above when the alert began: waits for a crossing
    assert ids(feed(index, 99.0, 100.0, start_ts=2000)) == [1]


def test_a_wobble_around_the_level_fires_once_per_cooldown() -> None:
    index = AlertIndex()
    index.schema_replace("org_a", 0, [rule(1, Kind.PRICE_ABOVE, 100.0)])

    wobble = [99.9, 100.1] * 40  # 80 seconds of crossing back and forth
    fired = feed(index, *wobble)

    assert [f.quote_ts for f in fired] == [1000, 61_000]  # again only once the 60 s cooldown is over
    assert index.suppressed == 38  # the other 38 upward crossings


def test_change_percent_thresholds_cross_like_prices() -> None:
    index = AlertIndex()
    index.schema_replace("org_a", 0, [rule(1, Kind.CHANGE_ABOVE, 5.0), rule(2, Kind.CHANGE_BELOW, -5.0),
                                      rule(3, Kind.PRICE_ABOVE, 1000.0)])  # fmt: skip
    quotes = [(100.0, 4.0), (101.0, 5.5), (97.0, -3.0), (94.0, -6.0)]

    fired: list[Firing] = []
    for n, (price, pct) in enumerate(quotes):
        fired += index.evaluate(0, {"AAPL": Q("AAPL", price, pct, n * 1000)})

    assert [(f.rule.alert_id, f.change_pct) for f in fired] == [(1, 5.5), (2, -6.0)]


def test_delays_and_symbols_are_separate_books() -> None:
    index = AlertIndex()
    index.schema_replace("org_live", 0, [rule(1, Kind.PRICE_ABOVE, 100.0, schema="org_live")])
    index.schema_replace("org_late", 15, [rule(1, Kind.PRICE_ABOVE, 100.0, schema="org_late")])
    index.schema_replace("org_msft", 0, [rule(2, Kind.PRICE_ABOVE, 100.0, symbol="MSFT", schema="org_msft")])

    fired = feed(index, 99.0, 101.0, delay=15)

    assert [(f.rule.schema, f.delay_minutes) for f in fired] == [("org_late", 15)]
    assert index.watched() == {(0, "AAPL"), (15, "AAPL"), (0, "MSFT")}
    assert index.evaluate(0, {"TSLA": Q("TSLA", 1.0, 0.0, 0)}) == []  # no book: untouched


def test_replacing_an_organisation_keeps_its_cooldowns_and_the_others_rules() -> None:
    index = AlertIndex()
    index.schema_replace("org_a", 0, [rule(1, Kind.PRICE_ABOVE, 100.0), rule(2, Kind.PRICE_ABOVE, 100.0)])
    index.schema_replace("org_b", 0, [rule(1, Kind.PRICE_ABOVE, 100.0, schema="org_b")])
    assert len(feed(index, 99.0, 101.0)) == 3

    index.schema_replace("org_a", 0, [rule(1, Kind.PRICE_ABOVE, 100.0)])  # alert 2 deleted
    fired = feed(index, 99.0, 101.0, start_ts=10_000)

    assert fired == []  # both remaining alerts are in their cooldown
    assert len(index) == 2
    index.schema_remove("org_b")
    index.schema_remove("org_a")
    assert index.books == {}
    assert index.quiet == {}


def test_the_database_s_last_firing_keeps_an_alert_quiet() -> None:
    index = AlertIndex()
    index.schema_replace("org_a", 0, [rule(1, Kind.PRICE_ABOVE, 100.0)], quiet_until={1: 5_000})

    assert feed(index, 99.0, 101.0) == []
    assert ids(feed(index, 99.0, 101.0, start_ts=5_000)) == [1]


def test_a_seeded_book_sees_a_crossing_that_happened_before_this_engine_led() -> None:
    index = AlertIndex()
    index.schema_replace("org_a", 0, [rule(1, Kind.PRICE_ABOVE, 100.0)])
    index.seed(0, "AAPL", 99.0, 0.0)

    assert ids(feed(index, 101.0)) == [1]
    assert index.touched_take() == {0: {"AAPL": (101.0, 0.0)}}
    assert index.touched_take() == {}


@pytest.mark.parametrize("levels", [[1.0, 1.0, 1.0], [3.0, 1.0, 2.0, 1.0]])
def test_a_ladder_keeps_equal_levels_apart_and_removes_the_right_rule(levels: list[float]) -> None:
    ladder = Ladder()
    rules = [rule(i, Kind.PRICE_ABOVE, level) for i, level in enumerate(levels)]
    for r in rules:
        ladder.add(r)
    assert ladder.levels == sorted(levels)

    ladder.remove(rules[-1])

    assert rules[-1] not in ladder.rules
    assert len(ladder) == len(levels) - 1
    with pytest.raises(KeyError):
        ladder.remove(rules[-1])
