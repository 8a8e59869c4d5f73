"""The simulated provider: repeatable random walks, plausible quotes, only what is subscribed, at the rate asked."""

import asyncio
import itertools
import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
from pytest_django.fixtures import Settings

from streaming.providers import PROVIDERS, SimulatedProvider, provider_create
from streaming.quotes import Quote

SYMBOLS = ["AAPL", "MSFT", "KO", "NVDA", "SAP.DE"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def take(provider: SimulatedProvider, count: int, within: float = 5.0) -> list[Quote]:
    """The next `count` quotes from the provider's stream (batches flattened)."""
    quotes: list[Quote] = []
    stream = provider.quotes()
    try:
        async with asyncio.timeout(within):
            async for batch in stream:
                quotes.extend(batch)
                if len(quotes) >= count:
                    break
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return quotes[:count]


async def during(provider: SimulatedProvider, seconds: float) -> list[Quote]:
    """Every quote the provider's stream yields for `seconds`."""
    quotes: list[Quote] = []

    async def read() -> None:
        async for batch in provider.quotes():
            quotes.extend(batch)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(read(), seconds)
    return quotes


@pytest.fixture
async def provider() -> AsyncIterator[SimulatedProvider]:
    running = SimulatedProvider(ticks_per_second=2000, seed=11)
    await running.start()
    await running.subscribe(SYMBOLS)
    yield running
    await running.stop()


def without_ts(quotes: list[Quote]) -> list[tuple[object, ...]]:
    return [(q.symbol, q.price, q.bid, q.ask, q.volume, q.change, q.change_pct) for q in quotes]


def test_every_process_computes_the_same_quote_for_the_same_moment() -> None:
    """The path is a function of (symbol, seed, time): a failover leader or a delayed plan gets the same quotes."""
    first, second = SimulatedProvider(seed=42), SimulatedProvider(seed=42)
    moments = [1_700_000_000_000 + i * 137 for i in range(500)]
    assert [first.quote_at(SYMBOLS[i % 5], t) for i, t in enumerate(moments)] == [
        second.quote_at(SYMBOLS[i % 5], t) for i, t in enumerate(moments)
    ]
    other = SimulatedProvider(seed=43)
    assert [other.quote_at("AAPL", t) for t in moments] != [first.quote_at("AAPL", t) for t in moments]


def test_the_past_is_available_at_once() -> None:
    provider = SimulatedProvider(seed=1)
    assert provider.has_history
    now = now_ms()
    fifteen_minutes_ago = provider.quote_at("AAPL", now - 15 * 60_000)
    assert fifteen_minutes_ago.ts == now - 15 * 60_000
    assert 0 < fifteen_minutes_ago.bid < fifteen_minutes_ago.price < fifteen_minutes_ago.ask


def test_prices_move_like_a_market_not_a_sawtooth() -> None:
    """Over a trading day the price wanders a few per cent; tick to tick it barely moves."""
    provider = SimulatedProvider(seed=3)
    start = 1_700_000_000_000
    for symbol in SYMBOLS:
        close = provider.previous_close(symbol)
        day = [provider.quote_at(symbol, start + minute * 60_000).price for minute in range(390)]
        assert 0.8 * close < min(day) <= max(day) < 1.25 * close
        assert max(day) - min(day) > 0.002 * close, f"{symbol} is flat"
        steps = [provider.quote_at(symbol, start + i * 50).price for i in range(200)]
        assert max(abs(b - a) for a, b in itertools.pairwise(steps)) < 0.01 * close


async def test_quotes_are_normalised_and_plausible(provider: SimulatedProvider) -> None:
    before = now_ms()
    quotes = await take(provider, 500)
    after = now_ms()
    assert len(quotes) == 500
    closes: dict[str, set[float]] = defaultdict(set)
    last_volume: dict[str, int] = {}
    for q in quotes:
        assert isinstance(q, Quote)
        assert q.symbol in SYMBOLS
        assert isinstance(q.volume, int)
        assert isinstance(q.ts, int)
        assert before - 50 <= q.ts <= after + 50, "ts is epoch milliseconds of now"
        assert 0 < q.bid <= q.price <= q.ask
        assert q.volume >= last_volume.get(q.symbol, 0)
        last_volume[q.symbol] = q.volume
        for value in (q.price, q.bid, q.ask, q.change, q.change_pct):
            assert value == round(value, 2), "prices carry at most two decimals"
        previous_close = q.price - q.change
        closes[q.symbol].add(round(previous_close, 2))
        assert q.change_pct * q.change >= 0, "change and change_pct have the same sign"
        assert math.isclose(q.change_pct, q.change / previous_close * 100, abs_tol=0.011)
    for symbol, seen in closes.items():
        assert len(seen) == 1, f"{symbol}'s previous close moved: {seen}"
        assert seen == {provider.previous_close(symbol)}


def test_volume_grows_through_the_day() -> None:
    provider = SimulatedProvider(seed=2)
    start = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000  # a UTC midnight
    volumes = [provider.quote_at("AAPL", start + minute * 60_000).volume for minute in range(1, 600)]
    assert all(b >= a for a, b in itertools.pairwise(volumes))
    assert volumes[-1] > volumes[0]


def test_bid_is_below_ask_for_every_listed_symbol() -> None:
    """A quote's bid is strictly below its ask (a "locked" book with bid == ask is not plausible),
    also for cheap, tight-spread symbols where rounding both sides to cents could meet."""
    provider = SimulatedProvider(seed=7)
    quotes = [provider.quote_at(s, 1_700_000_000_000 + i * 997) for s in ["3436.T", "AAPL"] for i in range(500)]
    assert [q for q in quotes if not q.bid < q.ask] == []


async def test_only_subscribed_symbols_appear_and_unsubscribed_ones_stop(provider: SimulatedProvider) -> None:
    quotes = await take(provider, 300)
    assert {q.symbol for q in quotes} == set(SYMBOLS)

    await provider.unsubscribe(["AAPL", "MSFT", "NOT_SUBSCRIBED"])
    quotes = await take(provider, 300)
    assert {q.symbol for q in quotes} == {"KO", "NVDA", "SAP.DE"}

    await provider.subscribe(["AAPL"])
    quotes = await take(provider, 300)
    assert {q.symbol for q in quotes} == {"AAPL", "KO", "NVDA", "SAP.DE"}


async def test_nothing_is_produced_without_subscriptions() -> None:
    provider = SimulatedProvider(ticks_per_second=500, seed=1)
    await provider.start()
    assert await during(provider, 0.2) == []
    await provider.subscribe(["AAPL"])
    await provider.unsubscribe(["AAPL"])
    assert await during(provider, 0.2) == []


async def test_subscribe_accepts_any_iterable() -> None:
    """The interface takes Iterable[str]; a generator must subscribe as well as a list does."""
    provider = SimulatedProvider(ticks_per_second=500, seed=1)
    await provider.start()
    await provider.subscribe(s for s in ["AAPL", "MSFT"])
    quotes = await during(provider, 0.3)
    assert {q.symbol for q in quotes} == {"AAPL", "MSFT"}


async def test_the_rate_is_about_ticks_per_second() -> None:
    provider = SimulatedProvider(ticks_per_second=200, seed=3)
    await provider.start()
    await provider.subscribe(SYMBOLS)
    quotes = await during(provider, 1.0)
    assert 100 <= len(quotes) <= 300


async def test_stop_ends_the_stream(provider: SimulatedProvider) -> None:
    stream = provider.quotes()
    assert await anext(stream)
    await provider.stop()
    async with asyncio.timeout(1):
        rest = [batch async for batch in stream]
    assert rest == []


def test_provider_create_knows_the_simulated_provider(settings: Settings) -> None:
    settings.SIMULATED_TICKS_PER_SECOND = 123
    settings.SIMULATED_SEED = 9
    provider = provider_create("simulated")
    assert isinstance(provider, SimulatedProvider)
    assert (provider.ticks_per_second, provider.seed) == (123, 9)
    settings.MARKET_DATA_PROVIDER = "simulated"
    assert isinstance(provider_create(), SimulatedProvider)


def test_provider_create_refuses_an_unknown_name_and_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match="nope") as error:
        provider_create("nope")
    assert all(name in str(error.value) for name in PROVIDERS)
    assert "simulated" in str(error.value)
