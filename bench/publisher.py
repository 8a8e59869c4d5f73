"""The tick publisher: replays a random-walk market into a Redis pub/sub channel at a commanded rate.

Every ~5 ms it publishes the ticks that are due as one JSON array of SPEC Quote objects, stamped
with the publish time, going round-robin over a shuffled list of the symbols (so each symbol ticks
at rate / len(symbols)). At rates it cannot keep up with it falls behind rather than bursting to
catch up. `window` tells the orchestrator how many ticks it really published with a `ts` in a given
interval, and how many quotes they should bring the clients: each tick counts its symbol's weight
(the number of open connections that follow the symbol).

    python -m bench.publisher --redis-url URL --channel NAME --symbols A,B,C [--seed 1]

Commands (bench.wire): `rate {"rate": ticks/s}`, `weights {"weights": {symbol: connections}}`,
`focus {"symbols": [symbol] | null}` (tick only these, round-robin; null: every symbol again),
`window {"start_ms", "end_ms"}` → {"published", "deliveries", "subscribers"}.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as redis

from bench import wire

PERIOD_SECONDS = 0.005
MAX_BACKLOG_SECONDS = 0.05  # further behind than this, the publisher skips ahead instead of bursting
HISTORY_MS = 120_000


@dataclass
class Market:
    """A random walk per symbol; `ticks(n)` advances the next n symbols of the round."""

    symbols: list[str]
    rng: random.Random
    opens: list[float] = field(init=False)
    prices: list[float] = field(init=False)
    volumes: list[int] = field(init=False)
    weights: list[int] = field(init=False)
    order: list[int] = field(init=False)  # the indices of the symbols that tick, in turn
    cursor: int = 0

    def __post_init__(self) -> None:
        self.rng.shuffle(self.symbols)
        self.opens = [round(self.rng.uniform(5, 500), 2) for _ in self.symbols]
        self.prices = list(self.opens)
        self.volumes = [self.rng.randint(10_000, 1_000_000) for _ in self.symbols]
        self.weights = [0] * len(self.symbols)
        self.order = list(range(len(self.symbols)))

    def weigh(self, weights: dict[str, int]) -> None:
        self.weights = [weights.get(symbol, 0) for symbol in self.symbols]

    def focus(self, symbols: list[str] | None) -> int:
        """Tick only these symbols (None: all of them); returns how many tick now."""
        chosen = set(symbols) if symbols is not None else set(self.symbols)
        self.order = [i for i, symbol in enumerate(self.symbols) if symbol in chosen] or list(range(len(self.symbols)))
        self.cursor = 0
        return len(self.order)

    def ticks(self, count: int, ts: int) -> tuple[list[dict[str, Any]], int]:
        """`count` ticks stamped `ts`, and the sum of their weights."""
        gauss, randint, out, weight = self.rng.gauss, self.rng.randint, [], 0
        order = self.order
        for _ in range(count):
            i = order[self.cursor]
            self.cursor = (self.cursor + 1) % len(order)
            weight += self.weights[i]
            price = self.prices[i] = max(0.01, self.prices[i] * math.exp(gauss(0, 0.0008)))
            half_spread = max(0.005, price * 0.0002)
            self.volumes[i] += randint(1, 500)
            change = price - self.opens[i]
            out.append({
                "symbol": self.symbols[i], "price": round(price, 4), "bid": round(price - half_spread, 4),
                "ask": round(price + half_spread, 4), "volume": self.volumes[i], "change": round(change, 4),
                "change_pct": round(100 * change / self.opens[i], 4), "ts": ts,
            })  # fmt: skip
        return out, weight


class Publisher:
    def __init__(self, client: redis.Redis[bytes], channel: str, market: Market) -> None:
        self.client = client
        self.channel = channel
        self.market = market
        self.rate = 0.0
        self.history: deque[tuple[int, int, int]] = deque()  # (ts, ticks, weight) of each message
        self.subscribers = 0
        self._since = time.monotonic()  # when the current rate was set
        self._sent_since = 0  # ticks published at the current rate
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def set_rate(self, command: wire.Message) -> wire.Message:
        self.rate = float(command["rate"])
        self._since, self._sent_since = time.monotonic(), 0
        return {}

    async def weigh(self, command: wire.Message) -> wire.Message:
        self.market.weigh(command["weights"])
        return {}

    async def focus(self, command: wire.Message) -> wire.Message:
        return {"ticking": self.market.focus(command.get("symbols"))}

    async def window(self, command: wire.Message) -> wire.Message:
        if self.task is not None and self.task.done():
            self.task.result()  # the publishing loop failed: its error ends this process
        start, end = int(command["start_ms"]), int(command["end_ms"])
        inside = [(ticks, weight) for ts, ticks, weight in self.history if start <= ts < end]
        return {"published": sum(t for t, _ in inside), "deliveries": sum(w for _, w in inside),
                "subscribers": self.subscribers}  # fmt: skip

    async def run(self) -> None:
        next_slot = time.monotonic()
        while True:
            now = time.monotonic()
            due = int((now - self._since) * self.rate) - self._sent_since
            if due > self.rate * MAX_BACKLOG_SECONDS + 1:  # fell behind: drop the backlog
                self._since, self._sent_since = now, 0
                due = 0
            if due > 0:
                ts = time.time_ns() // 1_000_000
                batch, weight = self.market.ticks(due, ts)
                self.subscribers = await self.client.publish(self.channel, orjson.dumps(batch))
                self._sent_since += due
                self.history.append((ts, due, weight))
                while self.history[0][0] < ts - HISTORY_MS:
                    self.history.popleft()
            next_slot = max(next_slot + PERIOD_SECONDS, time.monotonic())
            await asyncio.sleep(next_slot - time.monotonic())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--symbols", required=True, help="comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    async with redis.Redis.from_url(args.redis_url) as client:
        publisher = Publisher(client, args.channel, Market(args.symbols.split(","), random.Random(args.seed)))
        publisher.start()
        await wire.serve({"rate": publisher.set_rate, "weights": publisher.weigh, "focus": publisher.focus,
                          "window": publisher.window})  # fmt: skip


if __name__ == "__main__":
    wire.run(main)
