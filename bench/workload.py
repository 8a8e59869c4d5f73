"""The workload every system gets: the same planned streams and the same ladder of tick rates."""

from __future__ import annotations

import random
from dataclasses import dataclass

SLOW_EVERY = 20  # every 20th stream (5 %) is the one that reads slowly in the slow-reader scenario
SYMBOLS_PER_STREAM = (20, 30)


@dataclass(frozen=True)
class Stream:
    """One planned connection: its organisation (index), its symbols, whether it may read slowly."""

    organisation: int
    symbols: tuple[str, ...]
    slow: bool


def streams_plan(count: int, *, organisations: int, symbols: list[str], seed: int) -> list[Stream]:
    """`count` streams round-robin over organisations, each 20-30 symbols drawn with a fixed seed."""
    rng = random.Random(seed)
    low, high = SYMBOLS_PER_STREAM
    return [
        Stream(index % organisations, tuple(rng.sample(symbols, rng.randint(low, high))), index % SLOW_EVERY == 19)
        for index in range(count)
    ]


def subscriptions(streams: list[Stream]) -> int:
    return sum(len(stream.symbols) for stream in streams)


def rates_ladder(*, fanout: float, start_delivered: float, factor: float, steps: int) -> list[float]:
    """Offered ticks/s rising geometrically, starting where `start_delivered` quotes/s are expected.

    `fanout` is the quotes delivered per tick (subscriptions / symbols), so every connection count
    starts at the same delivered load and climbs through the same levels.
    """
    start = start_delivered / fanout
    return [round(start * factor**step, 2) for step in range(steps)]
