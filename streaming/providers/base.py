"""The market-data provider interface: every source (simulated, replay, vendors) speaks it."""

import abc
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from streaming.quotes import Quote


@dataclass
class ProviderStatus:
    """What a provider says about itself, for staff (feed status) and for viewers (unserved symbols)."""

    connected: bool = True
    last_quote_ms: int | None = None
    # Symbols asked for that the source does not serve, with a reason code ("symbol_limit",
    # "not_entitled", "unknown_symbol") that the dashboard shows.
    unserved: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # the last error, in words for staff ("Alpaca refused the key (402 auth failed)")
    reconnects: int = 0


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

    def quote_at(self, symbol: str, ts_ms: int) -> Quote | None:
        """The quote of `symbol` as it was at `ts_ms` (epoch ms), for a provider with history; else None.

        A provider with history (the simulated feed's reproducible path, a replay) lets a delayed plan
        see quotes `delay_minutes` old from its first second and after a feed failover, and draws the
        intraday sparkline. Cheap and synchronous: the feed calls it for every delayed watch each second.
        """
        return None

    @property
    def has_history(self) -> bool:
        return False

    def status(self) -> ProviderStatus:
        """Connected or not, last quote, unserved symbols, last error (a source without a connection is always up)."""
        return ProviderStatus()
