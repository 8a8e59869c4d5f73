"""QuoteHistory, a vendor's recent past in memory: bars and live quotes in, the quote of any moment out."""

import pytest

from streaming.bars import bars_from_history
from streaming.providers.alpaca import AlpacaProvider
from streaming.providers.history import (
    FINE_MS,
    KEEP_MS,
    MAX_POINTS,
    POINT_BYTES,
    QuoteHistory,
    minute_bar,
)
from streaming.quotes import Quote
from streaming.state import Bar

from .minute_bars import MINUTE_MS, minute_bars

# 2024-07-24 14:00 New York (18:00 UTC): a trading day's afternoon.
NOW = 1_721_844_000_000


def bars(minutes: int, *, until: int = NOW) -> list[Bar]:
    return [minute_bar(*bar) for bar in minute_bars(until_ms=until, minutes=minutes)]


def live(symbol: str, ts: int, price: float, volume: int = 0) -> Quote:
    return Quote(symbol, price, price - 0.01, price + 0.01, volume, 0.0, 0.0, ts)


def test_the_quote_of_a_moment_is_its_minute_bars_close_once_the_bar_has_closed() -> None:
    history = QuoteHistory()
    day = bars(60)
    history.backfill("AAPL", day, until=NOW)
    delay = 15 * MINUTE_MS
    bar = next(b for b in day if b.minute == NOW - delay)
    quote = history.quote_at("AAPL", NOW - delay + 50_000, previous_close=100.0)
    assert quote == Quote("AAPL", bar.close, bar.close, bar.close, quote.volume if quote else 0,
                          round(bar.close - 100.0, 4), round(bar.close - 100.0, 4), NOW - delay + 50_000)  # fmt: skip
    opening = history.quote_at("AAPL", NOW - delay)
    assert opening is not None
    assert opening.price == bar.open
    assert history.quote_at("AAPL", day[0].minute - 1) is None  # before the first point
    assert history.quote_at("MSFT", NOW) is None  # a symbol it knows nothing of
    # After the last bar: still its close (the last point at or before the moment).
    later = history.quote_at("AAPL", NOW + 5 * MINUTE_MS)
    assert later is not None
    assert later.price == day[-1].close


def test_sampling_the_history_every_5_seconds_rebuilds_the_vendors_bars() -> None:
    """The bar recorder fills in a symbol's day from quote_at: it must find the vendor's own bars."""
    provider = AlpacaProvider(key_id="k", secret_key="s")
    day = bars(30)
    volume = provider.history.backfill("AAPL", day, until=NOW)
    assert volume == sum(b.volume for b in day)  # the day's volume so far, for the live quotes to go on from
    rebuilt = bars_from_history(provider, "AAPL", until=NOW, count=29)
    # The first bar's volume counts from the sample before it, which the history does not have.
    assert rebuilt == [Bar(b.minute, b.open, b.high, b.low, b.close, b.volume) for b in day[1:]]


def test_a_bar_that_has_not_ended_is_left_to_the_live_stream() -> None:
    history = QuoteHistory()
    history.backfill("AAPL", bars(3, until=NOW + MINUTE_MS), until=NOW + 30_000)
    assert history.points("AAPL") == 2 * 4  # the minute NOW..NOW+60 s is not over at NOW+30 s
    last = history.quote_at("AAPL", NOW + 59_000)
    assert last is not None
    assert last.price == bars(3, until=NOW + MINUTE_MS)[-2].close


def test_live_quotes_extend_the_history_one_point_a_second() -> None:
    history = QuoteHistory()
    history.backfill("AAPL", bars(20), until=NOW)
    before = history.points("AAPL")
    history.record(live("AAPL", NOW + 100, 200.0, volume=10))
    history.record(live("AAPL", NOW + 900, 201.0, volume=20))  # the same second: the later quote stands
    history.record(live("AAPL", NOW + 1_200, 202.0, volume=30))
    assert history.points("AAPL") == before + 2
    assert history.quote_at("AAPL", NOW + 950) == Quote("AAPL", 201.0, 200.99, 201.01, 20, 0.0, 0.0, NOW + 950)
    at = history.quote_at("AAPL", NOW + 5_000)
    assert at is not None
    assert (at.price, at.volume, at.ts) == (202.0, 30, NOW + 5_000)
    earlier = history.quote_at("AAPL", NOW - 1)
    assert earlier is not None
    assert earlier.price == bars(20)[-1].close


def test_a_late_backfill_fills_in_before_the_live_points_and_a_gap_after_them() -> None:
    history = QuoteHistory()
    first_live, last_live = NOW - 30 * MINUTE_MS, NOW - 20 * MINUTE_MS
    for ts in range(first_live, last_live + 1, 1000):
        history.record(live("AAPL", ts, 500.0))
    history.backfill("AAPL", bars(60), until=NOW)
    # Where live points are, they stand; before them and after them (the stream was away), the bars.
    assert history.quote_at("AAPL", first_live + 20_000) == live("AAPL", first_live + 20_000, 500.0)
    assert history.quote_at("AAPL", last_live) == live("AAPL", last_live, 500.0)
    for minute in (NOW - 40 * MINUTE_MS, NOW - 10 * MINUTE_MS):
        quote = history.quote_at("AAPL", minute + 50_000)
        assert quote is not None
        assert quote.price == next(b.close for b in bars(60) if b.minute == minute)


def test_a_day_of_quotes_every_second_stays_within_the_memory_bound() -> None:
    history = QuoteHistory()
    start = NOW - 8 * 3600_000  # more than a trading day, one quote every second

    def truth(ts: int) -> Quote:
        return live("AAPL", ts, 100.0 + ((ts - start) // 1000 % 600) / 100,
                                                        volume=(ts - start) // 1000)  # fmt: skip

    for i in range(8 * 3600):
        history.record(truth(start + i * 1000))
    assert history.points("AAPL") <= MAX_POINTS
    assert history.nbytes("AAPL") <= MAX_POINTS * POINT_BYTES <= 110_000
    end = start + (8 * 3600 - 1) * 1000
    # The recent past keeps its seconds; older minutes keep their first, highest, lowest and last quotes.
    recent = end - FINE_MS + 2 * MINUTE_MS + 7_000
    assert history.quote_at("AAPL", recent) == truth(recent)
    old_minute = end - 3 * 3600_000 - (end - 3 * 3600_000) % MINUTE_MS
    seconds = range(old_minute, old_minute + MINUTE_MS, 1000)
    prices = {q.price for ts in seconds if (q := history.quote_at("AAPL", ts)) is not None}
    true_prices = [truth(ts).price for ts in seconds]
    assert {true_prices[0], true_prices[-1], max(true_prices), min(true_prices)} <= prices <= set(true_prices)
    assert len(prices) <= 4
    # Older than the trading day: gone (bar the one point that is the quote of the day's first moment).
    assert history.quote_at("AAPL", end - KEEP_MS - 2 * MINUTE_MS) is None


def test_a_day_of_bars_costs_four_points_a_minute() -> None:
    history = QuoteHistory()
    history.backfill("AAPL", bars(390), until=NOW)
    assert history.points("AAPL") == 4 * 390
    assert history.nbytes("AAPL") == 4 * 390 * POINT_BYTES  # 62,400 bytes


def test_forget_drops_the_symbol() -> None:
    history = QuoteHistory()
    history.backfill("AAPL", bars(5), until=NOW)
    history.forget("AAPL")
    assert (history.points("AAPL"), history.quote_at("AAPL", NOW)) == (0, None)


@pytest.mark.parametrize(
    "fields",
    [
        ("2024-07-24", 1, 1, 1, 1, 1),  # a time that is not a number
        (NOW, 1, 0.5, 1, 1, 1),  # high below low
        (NOW, 0, 1, 0, 1, 1),  # a price of 0
        (NOW, 1, 2, 1, 3, 1),  # a close above the high
        (NOW, 1, 1, 1, 1, None),  # no volume
    ],
)
def test_what_is_not_a_bar_is_refused(fields: tuple[object, ...]) -> None:
    with pytest.raises(ValueError, match="not"):
        minute_bar(*fields)
