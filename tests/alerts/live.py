"""Live engines for the tests: feeds with an AlertEngine in the test's loop, and a replay whose crossings are known."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers

from alerts.engine import AlertEngine
from streaming.feed import Feed
from streaming.providers import MarketDataProvider
from streaming.providers.replay import Bar, ReplayProvider
from streaming.state import stream_state
from tests.alerts.conftest import make_alert
from tests.streaming.conftest import Tenant

# A replay of AAPL that repeats every 2 seconds of wall time: a day from 100 up to 110, a day back to
# 100 (two daily bars played at 86,400 history seconds per second). The price rises through 105 when
# the wall clock is 500 ms into each 2-second period, and falls through it at 1,500 ms.
PERIOD_MS = 2000
UP_AT_MS = 500
DOWN_AT_MS = 1500
DAY_MS = 86_400_000
REPLAY_BARS = {
    "AAPL": [Bar(0, 100.0, 110.0, 100.0, 110.0, 1_000_000), Bar(DAY_MS, 110.0, 110.0, 100.0, 100.0, 1_000_000)],
}


def replay_provider(*, period_ms: int = PERIOD_MS) -> ReplayProvider:
    """The replay above; a longer period (the same path, slower) for delayed plans' one quote a second."""
    return ReplayProvider(REPLAY_BARS, speed=86_400 * PERIOD_MS / period_ms, ticks_per_second=400)


def next_crossing(after_ms: int, phase_ms: int) -> int:
    """The first wall time (epoch ms) after `after_ms` at which the replay crosses 105 at that phase."""
    start = after_ms - after_ms % PERIOD_MS + phase_ms
    return start if start > after_ms else start + PERIOD_MS


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Running:
    """Feeds with their engines, in this test's loop; stopped (and their watches removed) afterwards."""

    def __init__(self) -> None:
        self.feeds: list[tuple[Feed, AlertEngine, asyncio.Task[None]]] = []

    def start(self, provider: MarketDataProvider) -> tuple[Feed, AlertEngine]:
        engine = AlertEngine()
        engine.start()
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        feed = Feed(provider, stream_state(), layer, observers=[engine])
        self.feeds.append((feed, engine, asyncio.create_task(feed.run())))
        return feed, engine

    async def stop(self) -> None:
        for feed, engine, task in self.feeds:
            feed.stop()
            async with asyncio.timeout(10):
                await task
            await engine.close()


async def until(check: Callable[[], Any], within: float, what: str) -> Any:
    """Poll `check` (run in a thread: it may read the database) until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        result = await sync_to_async(check)()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {within} s")
        await asyncio.sleep(0.05)


async def sleep_until(at_ms: int) -> None:
    await asyncio.sleep(max(0.0, (at_ms - now_ms()) / 1000))


async def alert_in(tenant: Tenant, **fields: Any) -> int:
    return (await sync_to_async(make_alert)(tenant.organisation, created_by_id=tenant.owner.pk, **fields)).pk


async def engine_ready(engine: AlertEngine) -> None:
    """The engine leads: its books are seeded (it evaluates what the feed quotes from now on)."""
    await until(lambda: engine.ready, 10, "the engine's take-over")


async def engine_evaluating(engine: AlertEngine) -> None:
    """The engine leads and has evaluated a quote of its alerts' symbols: the feed quotes them.

    Being ready is not enough for a test that waits for a given crossing: the feed starts quoting a
    symbol only alerts watch once it has seen the engine's watch (a few hundred ms on a busy machine).
    """
    await engine_ready(engine)
    await until(lambda: engine.index.evaluated, 10, "the engine's first evaluation")
