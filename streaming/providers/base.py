"""The market-data provider interface: every source (simulated, replay, vendors) speaks it."""

import abc
from collections.abc import AsyncIterator, Iterable

from streaming.quotes import Quote


class MarketDataProvider(abc.ABC):
    """An async source of normalised quotes for the symbols it has been asked for."""

    name: str = "abstract"

    @abc.abstractmethod
    async def start(self) -> None:
        """Open connections; called once before `quotes()`."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Close connections; `quotes()` then ends."""

    @abc.abstractmethod
    async def subscribe(self, symbols: Iterable[str]) -> None:
        """Start producing quotes for these symbols (idempotent)."""

    @abc.abstractmethod
    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        """Stop producing quotes for these symbols (idempotent)."""

    @abc.abstractmethod
    def quotes(self) -> AsyncIterator[list[Quote]]:
        """Batches of quotes, in source order, as they arrive."""
