"""The feed follows the watch registry: a watch registered while a new leader reads it is not missed."""

import asyncio
import itertools
from collections.abc import Iterable

import pytest
from channels.layers import InMemoryChannelLayer
from pytest_django.fixtures import Settings

from streaming.feed import WATCH_REFRESH_SECONDS, Feed
from streaming.groups import quotes_group
from streaming.providers import SimulatedProvider
from streaming.state import Watch
from streaming.state.memory import MemoryStreamState

pytestmark = pytest.mark.asyncio


class RegisteredMeanwhile(MemoryStreamState):
    """A registry in which another process registers a watch just after the feed's first read of it."""

    def __init__(self, late: Watch) -> None:
        super().__init__()
        self.late: Watch | None = late

    async def watch_keys(self) -> set[str]:
        keys = await super().watch_keys()
        if self.late is not None:
            late, self.late = self.late, None
            await self.watches_update("alerts-engine", {late}, set(), full=False)
        return keys


class Asked(SimulatedProvider):
    """The simulated provider, telling when it is asked for a symbol."""

    def __init__(self, symbol: str) -> None:
        super().__init__(ticks_per_second=400, seed=7)
        self.symbol, self.asked = symbol, asyncio.Event()

    async def subscribe(self, symbols: Iterable[str]) -> None:
        symbols = list(symbols)
        await super().subscribe(symbols)
        if self.symbol in symbols:
            self.asked.set()


async def test_a_watch_registered_while_the_leader_reads_the_registry_is_quoted_at_once() -> None:
    state = RegisteredMeanwhile(Watch("_alerts", 0, "MSFT"))
    await state.watches_update("web-1", {Watch("acme", 0, "AAPL")}, set(), full=True)
    provider = Asked("MSFT")
    feed = Feed(provider, state, InMemoryChannelLayer())
    running = asyncio.create_task(feed.run())
    try:
        async with asyncio.timeout(2):  # the safety-net refresh would take WATCH_REFRESH_SECONDS
            await provider.asked.wait()
    finally:
        feed.stop()
        async with asyncio.timeout(5):
            await running

    assert WATCH_REFRESH_SECONDS > 2
    assert feed.index.symbols == {"AAPL", "MSFT"}


class Recorded(InMemoryChannelLayer):
    """The in-memory layer, noting when each group message was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[float, str]] = []

    async def group_send(self, group: str, message: dict) -> None:  # type: ignore[type-arg]
        self.sent.append((asyncio.get_running_loop().time(), group))
        await super().group_send(group, message)


async def test_an_organisation_gets_at_most_one_message_per_frame_window(settings: Settings) -> None:
    """The web processes write what a message brings at once: the feed's window (STREAM_FRAME_MS) is
    what spaces a connection's frames, however fast the provider ticks."""
    settings.STREAM_FRAME_MS = 50
    state = MemoryStreamState()
    await state.watches_update("web-1", {Watch("acme", 0, s) for s in ("AAPL", "MSFT", "NVDA")}, set(), full=True)
    layer = Recorded()
    feed = Feed(SimulatedProvider(ticks_per_second=1000, seed=3), state, layer)
    running = asyncio.create_task(feed.run())
    try:
        await asyncio.sleep(1.0)
    finally:
        feed.stop()
        async with asyncio.timeout(5):
            await running

    sent = [at for at, group in layer.sent if group == quotes_group("acme")]
    assert len(sent) >= 5, "the provider ticks 1,000 times a second: the organisation gets batches"
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent)]
    assert min(gaps) >= 0.045, f"two messages {min(gaps) * 1000:.1f} ms apart, inside one 50 ms window"
    assert len(sent) <= 21
