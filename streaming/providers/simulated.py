"""The default provider: a plausible random walk per symbol, repeatable with a seed."""

import asyncio
import math
import random
import time
import zlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from streaming.quotes import Quote

from .base import MarketDataProvider

TICK_INTERVAL_SECONDS = 0.02  # the provider wakes up 50 times a second and emits what is due


@dataclass(slots=True)
class _Instrument:
    previous_close: float
    price: float
    sigma_per_tick: float
    spread_fraction: float
    volume: int


class SimulatedProvider(MarketDataProvider):
    """Random-walk quotes: per-symbol volatility, bid/ask spread, cumulative volume, daily change.

    `ticks_per_second` is the total rate across the subscribed symbols; `seed` makes a run repeatable.
    """

    name = "simulated"

    def __init__(self, *, ticks_per_second: float = 20.0, seed: int | None = None) -> None:
        self.ticks_per_second = ticks_per_second
        self.seed = seed
        self._random = random.Random(seed)  # noqa: S311 (simulated prices, not secrets)
        self._instruments: dict[str, _Instrument] = {}
        self._symbols: list[str] = []
        self._running = False
        self._carry = 0.0

    def _instrument(self, symbol: str) -> _Instrument:
        # Per-symbol traits derive from the symbol (and seed) alone, so every run prices AAPL alike.
        traits = random.Random(zlib.crc32(symbol.encode()) ^ (self.seed or 0))  # noqa: S311
        close = round(math.exp(traits.uniform(math.log(8), math.log(900))), 2)
        daily_volatility = traits.uniform(0.008, 0.035)
        return _Instrument(
            previous_close=close,
            price=round(close * (1 + traits.gauss(0, daily_volatility)), 2),
            sigma_per_tick=daily_volatility / 30,
            spread_fraction=traits.uniform(0.0002, 0.0015),
            volume=traits.randrange(50_000, 5_000_000),
        )

    async def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        self._running = False

    async def subscribe(self, symbols: Iterable[str]) -> None:
        symbols = list(symbols)
        for symbol in symbols:
            if symbol not in self._instruments:
                self._instruments[symbol] = self._instrument(symbol)
        self._symbols = sorted(set(self._symbols) | set(symbols))

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone = set(symbols)
        self._symbols = [s for s in self._symbols if s not in gone]

    def tick(self, symbol: str, now_ms: int) -> Quote:
        """Move one symbol's price one step and return its quote."""
        inst = self._instruments[symbol]
        inst.price = max(0.01, inst.price * math.exp(self._random.gauss(0, inst.sigma_per_tick)))
        half_spread = max(0.005, inst.price * inst.spread_fraction / 2)
        inst.volume += self._random.randrange(1, 50) * 100
        price = round(inst.price, 2)
        change = round(price - inst.previous_close, 2)
        return Quote(
            symbol=symbol,
            price=price,
            # Bid rounds down and ask up, so the spread never collapses to one cent.
            bid=math.floor((price - half_spread) * 100) / 100,
            ask=math.ceil((price + half_spread) * 100) / 100,
            volume=inst.volume,
            change=change,
            change_pct=round(change / inst.previous_close * 100, 2),
            ts=now_ms,
        )

    async def quotes(self) -> AsyncIterator[list[Quote]]:
        next_wake = time.monotonic()
        while self._running:
            next_wake += TICK_INTERVAL_SECONDS
            await asyncio.sleep(max(0.0, next_wake - time.monotonic()))
            if not self._symbols:
                continue
            self._carry += self.ticks_per_second * TICK_INTERVAL_SECONDS
            due, self._carry = int(self._carry), self._carry - int(self._carry)
            if due:
                now_ms = time.time_ns() // 1_000_000
                yield [self.tick(self._random.choice(self._symbols), now_ms) for _ in range(due)]
