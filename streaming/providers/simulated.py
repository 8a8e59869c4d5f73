"""The default provider: made-up but plausible prices, the same for every process at the same moment.

A symbol's price is a function of the symbol, the seed and the time, not of what came before: a
few slow waves (minutes to hours, sized like a random walk over their period) plus a little noise
per tenth of a second, around a previous close drawn once per symbol. So any two feed processes
agree on the price of any moment, and the quote of a past moment can be computed at once: a delayed
plan sees quotes `delay_minutes` old from its first second, also right after a feed failover.
"""

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
WAVE_PERIODS_SECONDS = (47.0, 211.0, 863.0, 3_607.0, 14_401.0, 57_601.0)
DAY_SECONDS = 86_400
NOISE_STEP_MS = 100


@dataclass(frozen=True, slots=True)
class _Traits:
    previous_close: float
    amplitudes: tuple[float, ...]  # log-price amplitude of each wave
    phases: tuple[float, ...]
    noise: float  # log-price noise per step
    spread_fraction: float
    volume_per_second: float


class SimulatedProvider(MarketDataProvider):
    """Quotes of a seeded, time-determined path: `quote_at(symbol, ts)` for any moment, past or present.

    `ticks_per_second` is the total rate across the subscribed symbols; `seed` picks the paths.
    """

    name = "simulated"

    def __init__(self, *, ticks_per_second: float = 20.0, seed: int | None = None) -> None:
        self.ticks_per_second = ticks_per_second
        self.seed = seed
        self._random = random.Random(seed)  # noqa: S311 (which symbol ticks next, not prices)
        self._traits: dict[str, _Traits] = {}
        self._symbols: list[str] = []
        self._running = False
        self._carry = 0.0

    @property
    def has_history(self) -> bool:
        return True

    def traits(self, symbol: str) -> _Traits:
        traits = self._traits.get(symbol)
        if traits is None:
            traits = self._traits[symbol] = self._traits_draw(symbol)
        return traits

    def _traits_draw(self, symbol: str) -> _Traits:
        # Per-symbol traits derive from the symbol (and seed) alone, so every process prices AAPL alike.
        draw = random.Random(zlib.crc32(symbol.encode()) ^ (self.seed or 0))  # noqa: S311
        daily_volatility = draw.uniform(0.008, 0.035)
        # A random walk moves sigma * sqrt(T / day) over T: each wave swings about that much over its period.
        amplitudes = tuple(
            daily_volatility * math.sqrt(p / DAY_SECONDS) * draw.uniform(0.6, 1.2) for p in WAVE_PERIODS_SECONDS
        )
        return _Traits(
            previous_close=round(math.exp(draw.uniform(math.log(8), math.log(900))), 2),
            amplitudes=amplitudes,
            phases=tuple(draw.uniform(0, 2 * math.pi) for _ in WAVE_PERIODS_SECONDS),
            noise=daily_volatility / 400,
            spread_fraction=draw.uniform(0.0002, 0.0015),
            volume_per_second=draw.uniform(5, 500),
        )

    def quote_at(self, symbol: str, ts_ms: int) -> Quote:
        """The quote of `symbol` at `ts_ms` (epoch ms): the same in every process, for any moment."""
        traits = self.traits(symbol)
        seconds = ts_ms / 1000
        waves = zip(traits.amplitudes, WAVE_PERIODS_SECONDS, traits.phases, strict=True)
        wave = sum(amplitude * math.sin(2 * math.pi * seconds / period + phase) for amplitude, period, phase in waves)
        step = ts_ms // NOISE_STEP_MS
        noise = traits.noise * (_unit(symbol, step, self.seed) + _unit(symbol, ~step, self.seed) - 1) * 2
        price = round(max(0.01, traits.previous_close * math.exp(wave + noise)), 2)
        half_spread = max(0.005, price * traits.spread_fraction / 2)
        # Bid rounds down and ask up, so the spread never collapses to one cent.
        bid = math.floor((price - half_spread) * 100) / 100
        ask = math.ceil((price + half_spread) * 100) / 100
        if bid >= ask:
            bid, ask = round(price - 0.01, 2), round(price + 0.01, 2)
        since_midnight = seconds % DAY_SECONDS
        volume = int(traits.volume_per_second * since_midnight) // 100 * 100
        change = round(price - traits.previous_close, 2)
        return Quote(
            symbol=symbol,
            price=price,
            bid=max(0.01, bid),
            ask=ask,
            volume=volume,
            change=change,
            change_pct=round(change / traits.previous_close * 100, 2),
            ts=ts_ms,
        )

    def previous_close(self, symbol: str) -> float:
        return self.traits(symbol).previous_close

    async def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        self._running = False

    async def subscribe(self, symbols: Iterable[str]) -> None:
        self._symbols = sorted(set(self._symbols) | set(symbols))

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone = set(symbols)
        self._symbols = [s for s in self._symbols if s not in gone]

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
                chosen = {self._random.choice(self._symbols) for _ in range(due)}
                yield [self.quote_at(symbol, now_ms) for symbol in sorted(chosen)]


def _unit(symbol: str, step: int, seed: int | None) -> float:
    """A uniform number in [0, 1) fixed by (symbol, step, seed): the noise of one step, in any process."""
    return zlib.crc32(f"{symbol}:{step}:{seed or 0}".encode()) / 2**32
