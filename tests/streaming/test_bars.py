"""Minute bars: the recorder's aggregation of quotes, the stored day's bound, and a day of bars from the real feed."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers

from streaming.bars import BACKFILL_STEP_MS, BarBuilder, BarRecorder, bars_from_history
from streaming.feed import Feed
from streaming.observers import feed_observers
from streaming.providers import SimulatedProvider
from streaming.quotes import Quote
from streaming.state import BARS_KEPT, MINUTE_MS, Bar, StreamState, bars_sync, stream_state
from streaming.state import redis as redis_state
from streaming.state.memory import MemoryStreamState
from tests.streaming import conftest as streaming_fixtures
from tests.streaming.conftest import Committed, connect, receive
from tests.streaming.test_unit_state import redis_backend

committed, hub_cleanup = streaming_fixtures.committed, streaming_fixtures.hub_cleanup

M = 28_000_000 * MINUTE_MS  # a minute start (2023-03-28 10:40 UTC)


def quote(symbol: str, price: float, volume: int, ts: int) -> Quote:
    return Quote(symbol, price, price - 0.01, price + 0.01, volume, 0.0, 0.0, ts)


class NoHistory(SimulatedProvider):
    """A provider that cannot tell the past (as a vendor stream): the recorder builds bars from quotes alone."""

    @property
    def has_history(self) -> bool:
        return False


async def recorded(batches: list[dict[str, Quote]], state: StreamState) -> None:
    """Run a recorder while the feed leads, hand it the batches as realtime ones, then end the leadership
    (which stores the bar being built too)."""
    recorder = BarRecorder(state)
    leading = asyncio.create_task(recorder.lead(NoHistory(seed=1)))
    await asyncio.sleep(0)  # the leadership starts before the first batch, as the feed's tasks do
    for batch in batches:
        await recorder.observe(0, batch)
        await recorder.observe(15, batch)  # delayed batches repeat realtime quotes: not counted again
    leading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leading


# -- aggregation -------------------------------------------------------------------------------------
def test_a_minutes_quotes_make_its_open_high_low_close_and_volume() -> None:
    builder = BarBuilder()
    ticks = [(10.0, 1_000, 0), (12.5, 1_100, 9_000), (9.75, 1_250, 31_000), (11.0, 1_300, 59_999)]
    assert [builder.add(quote("KO", price, volume, M + at)) for price, volume, at in ticks] == [None] * 4
    # The first quote only tells where the cumulative volume stood: the minute traded 300 after it.
    assert builder.bar() == Bar(M, 10.0, 12.5, 9.75, 11.0, 300)


def test_a_later_minute_completes_the_bar_and_opens_the_next_with_the_volume_since_the_last_quote() -> None:
    builder = BarBuilder()
    builder.add(quote("KO", 10.0, 1_000, M + 1_000))
    builder.add(quote("KO", 10.5, 1_200, M + 50_000))
    completed = builder.add(quote("KO", 10.25, 1_500, M + MINUTE_MS + 2_000))
    assert completed == Bar(M, 10.0, 10.5, 10.0, 10.5, 200)
    assert builder.bar() == Bar(M + MINUTE_MS, 10.25, 10.25, 10.25, 10.25, 300)
    # A quote older than the bar being built (its minute is done) changes nothing.
    assert builder.add(quote("KO", 99.0, 9_999, M + 59_000)) is None
    assert builder.bar() == Bar(M + MINUTE_MS, 10.25, 10.25, 10.25, 10.25, 300)
    # A minute without quotes has no bar: the next quote's minute follows directly.
    assert builder.add(quote("KO", 10.0, 1_600, M + 3 * MINUTE_MS)) == Bar(
        M + MINUTE_MS, 10.25, 10.25, 10.25, 10.25, 300
    )
    assert builder.bar() == Bar(M + 3 * MINUTE_MS, 10.0, 10.0, 10.0, 10.0, 100)


def test_a_reset_of_the_cumulative_volume_at_a_new_day_counts_from_zero() -> None:
    builder = BarBuilder()
    builder.add(quote("KO", 10.0, 5_000_000, M))
    builder.add(quote("KO", 10.0, 5_000_400, M + 10_000))
    builder.add(quote("KO", 10.0, 300, M + 20_000))  # the day's volume started again
    builder.add(quote("KO", 10.0, 350, M + 30_000))
    assert builder.bar() is not None
    assert builder.bar().volume == 400 + 300 + 50  # type: ignore[union-attr]


async def test_the_recorder_builds_each_symbols_bars_from_realtime_batches_only() -> None:
    state = MemoryStreamState()
    await recorded(
        [
            {"KO": quote("KO", 60.0, 100, M + 1_000), "PEP": quote("PEP", 170.0, 50, M + 1_000)},
            {"KO": quote("KO", 61.0, 160, M + 20_000)},
            {"KO": quote("KO", 59.5, 190, M + 40_000), "PEP": quote("PEP", 171.0, 80, M + 40_000)},
            {"KO": quote("KO", 60.5, 200, M + MINUTE_MS + 500)},
        ],
        state,
    )
    assert state.bars_now(["KO", "PEP"]) == {
        "KO": [Bar(M, 60.0, 61.0, 59.5, 59.5, 90), Bar(M + MINUTE_MS, 60.5, 60.5, 60.5, 60.5, 10)],
        "PEP": [Bar(M, 170.0, 171.0, 170.0, 171.0, 30)],
    }


# -- storage: a trading day per symbol, the same in memory and in Redis ----------------------------------
@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[StreamState]:
    if request.param == "memory":
        yield MemoryStreamState()
        return
    async with redis_backend(monkeypatch) as backend:
        yield backend


def stored(state: StreamState, symbols: list[str]) -> dict[str, list[Bar]]:
    return state.bars_now(symbols) if isinstance(state, MemoryStreamState) else bars_sync(symbols)


def minute_bar(i: int, volume: int = 10) -> Bar:
    return Bar(M + i * MINUTE_MS, 100.0 + i, 101.5 + i, 99.25 + i, 100.5 + i, volume)


async def test_a_symbol_keeps_its_last_390_bars_and_its_last_minute_is_replaced(state: StreamState) -> None:
    await state.bars_replace({"KO": [minute_bar(i) for i in range(10)]})
    await state.bars_merge({"KO": [minute_bar(i) for i in range(10, 300)], "PEP": [minute_bar(0)]})
    await state.bars_merge({"KO": [minute_bar(299, volume=99), *(minute_bar(i) for i in range(300, 400))]})
    await state.bars_merge({"KO": [minute_bar(5)]})  # older than the last stored: ignored
    bars = stored(state, ["KO", "PEP", "MCD"])
    assert bars["KO"] == [minute_bar(i, volume=99 if i == 299 else 10) for i in range(400 - BARS_KEPT, 400)]
    assert bars["PEP"] == [minute_bar(0)]
    assert "MCD" not in bars
    await state.bars_replace({"KO": [minute_bar(i) for i in range(500)]})
    assert stored(state, ["KO"])["KO"] == [minute_bar(i) for i in range(500 - BARS_KEPT, 500)]


async def test_bars_survive_the_redis_format_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    bars = [Bar(M, 0.0123, 1234.5678, 0.01, 187.23, 0), Bar(M + MINUTE_MS, 1e-05, 2.5, 1e-05, 2.0, 12_345_678_901)]
    async with redis_backend(monkeypatch) as backend:
        await backend.bars_merge({"BRK.B": bars})
        assert bars_sync(["BRK.B"]) == {"BRK.B": bars}
        ttl = await backend.redis.pttl(f"{redis_state.PREFIX}bars:BRK.B")
    assert 86_000_000 < ttl <= 86_400_000  # a symbol nobody watches any more loses its bars after a day


# -- a day from the provider's history ---------------------------------------------------------------
def test_a_providers_history_makes_a_day_of_consistent_bars() -> None:
    provider = SimulatedProvider(seed=7)
    until = int(datetime(2025, 3, 14, 20, 0, tzinfo=UTC).timestamp() * 1000)
    bars = bars_from_history(provider, "KO", until=until)
    assert [bar.minute for bar in bars] == list(range(until - BARS_KEPT * MINUTE_MS, until, MINUTE_MS))
    assert all(bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high for bar in bars)
    assert all(bar.high > bar.low for bar in bars[:50])  # samples within the minute, not one price
    # Every share traded in the day is in exactly one bar (no reset of the volume within it).
    first = until - BARS_KEPT * MINUTE_MS - BACKFILL_STEP_MS
    assert (
        sum(bar.volume for bar in bars) == provider.quote_at("KO", until).volume - provider.quote_at("KO", first).volume
    )


# -- the real feed ------------------------------------------------------------------------------------
def test_run_feed_records_minute_bars() -> None:
    assert any(isinstance(observer, BarRecorder) for observer in feed_observers())


@pytest.fixture
async def recording_feed(hub_cleanup: None) -> AsyncIterator[Feed]:
    """The real feed with its bar recorder (as run_feed's) and a fast seeded simulated provider."""
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    running = Feed(SimulatedProvider(ticks_per_second=400, seed=7), stream_state(), layer, observers=[BarRecorder()])
    task = asyncio.create_task(running.run())
    yield running
    running.stop()
    async with asyncio.timeout(10):
        await task


async def day_of_bars(symbol: str, within: float = 5) -> list[Bar]:
    """The symbol's bars once the feed has filled in its day (bounded wait)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        bars = (await sync_to_async(bars_sync)([symbol])).get(symbol, [])
        if len(bars) >= BARS_KEPT:
            return bars
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{symbol} has {len(bars)} bars after {within} s")


@pytest.mark.asyncio
async def test_a_watched_symbol_gets_a_trading_day_of_bars_within_seconds(
    committed: Committed, recording_feed: Feed
) -> None:
    tenant = await committed.tenant("pro")
    first_minute = time.time_ns() // 1_000_000 // MINUTE_MS * MINUTE_MS
    ws = connect(tenant.host, session=tenant.session, query="symbols=KO")
    await ws.connect()
    await receive(ws)
    bars = await day_of_bars("KO")
    await ws.disconnect()
    now_minute = time.time_ns() // 1_000_000 // MINUTE_MS * MINUTE_MS
    assert len(bars) == BARS_KEPT
    assert [bar.minute for bar in bars] == list(
        range(bars[0].minute, bars[0].minute + BARS_KEPT * MINUTE_MS, MINUTE_MS)
    )
    assert first_minute - MINUTE_MS <= bars[-1].minute <= now_minute  # up to the bar being built
    assert all(0 < bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high for bar in bars)
    assert all(bar.volume >= 0 for bar in bars)
    assert sum(bar.volume for bar in bars) > 0
