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


async def test_the_same_seed_gives_the_same_sequence() -> None:
    first, second = SimulatedProvider(ticks_per_second=500, seed=42), SimulatedProvider(ticks_per_second=500, seed=42)
    for p in (first, second):
        await p.start()
        await p.subscribe(SYMBOLS)
    a, b = await take(first, 200), await take(second, 200)
    assert len(a) == len(b) == 200
    assert without_ts(a) == without_ts(b)
    assert len({q.symbol for q in a}) > 1

    other = SimulatedProvider(ticks_per_second=500, seed=43)
    await other.start()
    await other.subscribe(SYMBOLS)
    assert without_ts(await take(other, 200)) != without_ts(a)


async def test_the_same_seed_gives_the_same_ticks() -> None:
    first, second = SimulatedProvider(seed=5), SimulatedProvider(seed=5)
    for p in (first, second):
        await p.subscribe(SYMBOLS)
    a = [first.tick(SYMBOLS[i % len(SYMBOLS)], i) for i in range(500)]
    b = [second.tick(SYMBOLS[i % len(SYMBOLS)], i) for i in range(500)]
    assert a == b


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
        assert seen == {provider._instrument(symbol).previous_close}


async def test_volume_grows_on_every_tick(provider: SimulatedProvider) -> None:
    volumes = [provider.tick("AAPL", 0).volume for _ in range(200)]
    assert all(b > a for a, b in itertools.pairwise(volumes))


async def test_bid_is_below_ask_for_every_listed_symbol() -> None:
    """A quote's bid is strictly below its ask (a "locked" book with bid == ask is not plausible).

    The minimum half-spread is exactly half a cent, so for cheap, tight-spread symbols rounding both
    sides to cents can put bid, price and ask on the same cent. 3436.T with seed 7 does it at once.
    """
    provider = SimulatedProvider(seed=7)
    await provider.subscribe(["3436.T", "AAPL"])
    locked = [q for q in (provider.tick(s, 0) for s in ["3436.T", "AAPL"] * 100) if not q.bid < q.ask]
    assert locked == []


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
