"""The feed's pure parts: who watches what (WatchIndex), delayed quotes (DelayBuffer, delay_ms)."""

import copy

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_django.fixtures import Settings

from streaming.feed import DELAY_SAMPLE_MS, DelayBuffer, WatchIndex, delay_ms
from streaming.quotes import Quote
from streaming.state import Watch

MINUTE_MS = 50  # a test "minute": STREAM_DELAY_MINUTE_SECONDS = 0.05
T0 = 1_700_000_000_000


@pytest.fixture(autouse=True)
def short_minutes(settings: Settings) -> None:
    settings.STREAM_DELAY_MINUTE_SECONDS = MINUTE_MS / 1000


def quote(symbol: str, ts: int, price: float = 10.0) -> Quote:
    return Quote(
        symbol=symbol, price=price, bid=price - 0.01, ask=price + 0.01, volume=1, change=0, change_pct=0, ts=ts
    )


def add(buffer: DelayBuffer, q: Quote) -> bool:
    return buffer.add(q, q.encode())


def prices(released: dict[str, bytes]) -> dict[str, float]:
    return {symbol: orjson.loads(data)["price"] for symbol, data in released.items()}


# -- delay_ms ----------------------------------------------------------------------------------------


def test_delay_ms_follows_the_length_of_a_minute(settings: Settings) -> None:
    assert delay_ms(0) == 0
    assert delay_ms(15) == 15 * MINUTE_MS
    settings.STREAM_DELAY_MINUTE_SECONDS = 60
    assert delay_ms(15) == 15 * 60_000
    assert delay_ms(1) == 60_000


# -- WatchIndex --------------------------------------------------------------------------------------


def test_watch_index_groups_schemas_by_delay_then_symbol() -> None:
    watches = {
        Watch("org_b", 0, "AAPL"),
        Watch("org_a", 0, "AAPL"),
        Watch("org_a", 0, "MSFT"),
        Watch("org_c", 15, "AAPL"),
        Watch("org_d", 15, "AAPL"),
        Watch("org_d", 15, "KO"),
        Watch("org_e", 30, "NVDA"),
    }
    index = WatchIndex.build(watches)
    assert index.by_delay == {
        0: {"AAPL": ["org_a", "org_b"], "MSFT": ["org_a"]},
        15: {"AAPL": ["org_c", "org_d"], "KO": ["org_d"]},
        30: {"NVDA": ["org_e"]},
    }
    assert index.symbols == {"AAPL", "MSFT", "KO", "NVDA"}
    # Plain dicts: a lookup of an unwatched symbol or delay adds nothing and finds nothing.
    assert index.by_delay[0].get("NVDA") is None
    assert 5 not in index.by_delay
    assert type(index.by_delay) is dict
    assert all(type(symbols) is dict for symbols in index.by_delay.values())


def test_a_schema_appears_once_per_symbol_and_delay() -> None:
    index = WatchIndex.build({Watch("org_a", 0, "AAPL"), Watch("org_a", 5, "AAPL")})
    assert index.by_delay == {0: {"AAPL": ["org_a"]}, 5: {"AAPL": ["org_a"]}}


def test_an_empty_index() -> None:
    index = WatchIndex.build(set())
    assert index.by_delay == {}
    assert index.symbols == set()
    assert WatchIndex().symbols == set()


WATCHES = st.builds(Watch, st.sampled_from(["org_a", "org_b", "org_c"]), st.sampled_from([0, 5, 15]),
                    st.sampled_from(["AAPL", "MSFT", "KO"]))  # fmt: skip


@given(st.lists(st.tuples(st.sets(WATCHES), st.sets(WATCHES)), max_size=8))
def test_an_index_changed_step_by_step_is_the_index_built_from_the_end_state(
    steps: list[tuple[set[Watch], set[Watch]]],
) -> None:
    index, watches = WatchIndex(), set[Watch]()
    for added, removed in steps:
        removed -= added  # a read of the registry: one side of the difference or the other
        before, kept = index, copy.deepcopy(index.by_delay)
        index = index.changed(added, removed)
        watches = (watches | added) - removed
        assert before.by_delay == kept, "the earlier index is never changed in place"
        built = WatchIndex.build(watches)
        assert index.by_delay == built.by_delay
        assert index.schemas == {w.schema for w in watches} == built.schemas
        assert index.symbols == {w.symbol for w in watches}


def test_removing_the_last_watch_of_a_symbol_or_a_delay_leaves_nothing_behind() -> None:
    index = WatchIndex.build({Watch("org_a", 0, "AAPL"), Watch("org_a", 15, "KO"), Watch("org_b", 0, "MSFT")})
    index = index.changed([], [Watch("org_a", 15, "KO"), Watch("org_b", 0, "MSFT"), Watch("org_z", 0, "AAPL")])
    assert index.by_delay == {0: {"AAPL": ["org_a"]}}
    assert index.schemas == {"org_a"}
    assert type(index.by_delay[0]) is dict


# -- DelayBuffer ---------------------------------------------------------------------------------------


def test_a_quote_is_released_only_once_it_is_the_delay_old() -> None:
    buffer = DelayBuffer(delay_minutes=15)
    delay = 15 * MINUTE_MS
    assert add(buffer, quote("AAPL", T0, 100.0)) is True
    assert buffer.due(T0) == {}
    assert buffer.due(T0 + delay - 1) == {}
    assert prices(buffer.due(T0 + delay)) == {"AAPL": 100.0}
    assert buffer.due(T0 + 10 * delay) == {}, "a released quote is released once"


def test_quotes_come_out_in_order_as_each_becomes_due() -> None:
    buffer = DelayBuffer(delay_minutes=1)
    add(buffer, quote("AAPL", T0, 1.0))
    add(buffer, quote("MSFT", T0 + 400, 2.0))
    add(buffer, quote("KO", T0 + 800, 3.0))
    assert prices(buffer.due(T0 + MINUTE_MS + 400)) == {"AAPL": 1.0, "MSFT": 2.0}
    assert prices(buffer.due(T0 + MINUTE_MS + 799)) == {}
    assert prices(buffer.due(T0 + MINUTE_MS + 800)) == {"KO": 3.0}


def test_at_most_one_quote_per_symbol_per_sample_period() -> None:
    buffer = DelayBuffer(delay_minutes=1)
    assert add(buffer, quote("AAPL", T0, 1.0)) is True
    for offset in (1, 500, DELAY_SAMPLE_MS - 1):
        assert add(buffer, quote("AAPL", T0 + offset, 9.0)) is False
    assert add(buffer, quote("MSFT", T0 + 10, 5.0)) is True, "each symbol is sampled on its own"
    assert add(buffer, quote("AAPL", T0 + DELAY_SAMPLE_MS, 2.0)) is False, "kept, but not a new symbol"
    assert add(buffer, quote("AAPL", T0 + DELAY_SAMPLE_MS + 1, 9.0)) is False
    assert len(buffer.queue) == 3
    assert [(ts, symbol) for ts, symbol, _ in buffer.queue] == [
        (T0, "AAPL"),
        (T0 + 10, "MSFT"),
        (T0 + DELAY_SAMPLE_MS, "AAPL"),
    ]


def test_due_returns_the_latest_quote_per_symbol() -> None:
    buffer = DelayBuffer(delay_minutes=1)
    for second in range(5):
        add(buffer, quote("AAPL", T0 + second * DELAY_SAMPLE_MS, float(second)))
    add(buffer, quote("MSFT", T0 + 2 * DELAY_SAMPLE_MS, 42.0))
    released = buffer.due(T0 + 5 * DELAY_SAMPLE_MS + MINUTE_MS)
    assert prices(released) == {"AAPL": 4.0, "MSFT": 42.0}
    assert not buffer.queue


def test_due_leaves_quotes_that_are_not_yet_old_enough() -> None:
    buffer = DelayBuffer(delay_minutes=2)
    delay = 2 * MINUTE_MS
    add(buffer, quote("AAPL", T0, 1.0))
    add(buffer, quote("AAPL", T0 + DELAY_SAMPLE_MS, 2.0))
    assert prices(buffer.due(T0 + delay)) == {"AAPL": 1.0}
    assert len(buffer.queue) == 1
    assert prices(buffer.due(T0 + DELAY_SAMPLE_MS + delay)) == {"AAPL": 2.0}


def test_the_delay_is_read_from_settings_at_release_time(settings: Settings) -> None:
    buffer = DelayBuffer(delay_minutes=1)
    add(buffer, quote("AAPL", T0, 1.0))
    settings.STREAM_DELAY_MINUTE_SECONDS = 60
    assert buffer.due(T0 + MINUTE_MS) == {}
    assert prices(buffer.due(T0 + 60_000)) == {"AAPL": 1.0}
