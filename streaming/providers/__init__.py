"""Market-data providers behind one interface; `provider_create` picks one by name."""

from django.conf import settings

from .base import MarketDataProvider
from .relay import RelayProvider
from .simulated import SimulatedProvider

PROVIDERS = ("simulated", "replay", "alpaca", "finnhub", "polygon", "relay")


def data_simulated(provider: str | None = None) -> bool:
    """Whether the quotes are made up (SPEC: labelled as simulated wherever prices are shown): the
    running feed's provider when known (its status says), else the configured one."""
    return (provider or settings.MARKET_DATA_PROVIDER) == "simulated"


PROVIDER_LABELS = {
    "simulated": "Simulated (seeded, made-up prices)",
    "replay": "Replay of historical bars",
    "alpaca": "Alpaca",
    "finnhub": "Finnhub",
    "polygon": "Polygon (Massive)",
    "relay": "Relay (quotes published on Redis)",
}


def provider_create(name: str | None = None) -> MarketDataProvider:
    """The provider named (default: MARKET_DATA_PROVIDER), configured from settings."""
    name = name or settings.MARKET_DATA_PROVIDER
    if name == "simulated":
        return SimulatedProvider(ticks_per_second=settings.SIMULATED_TICKS_PER_SECOND, seed=settings.SIMULATED_SEED)
    if name == "replay":
        from .replay import ReplayProvider

        return ReplayProvider.from_settings()
    if name == "alpaca":
        from .alpaca import AlpacaProvider

        return AlpacaProvider.from_settings()
    if name == "finnhub":
        from .finnhub import FinnhubProvider

        return FinnhubProvider.from_settings()
    if name == "polygon":
        from .polygon import PolygonProvider

        return PolygonProvider.from_settings()
    if name == "relay":
        if not settings.REDIS_URL:
            raise ValueError("The relay provider reads a Redis channel: set REDIS_URL.")
        return RelayProvider(redis_url=settings.REDIS_URL, channel=settings.RELAY_CHANNEL)
    raise ValueError(f"Unknown market-data provider {name!r}; available: {', '.join(PROVIDERS)}.")


__all__ = ["PROVIDERS", "MarketDataProvider", "RelayProvider", "SimulatedProvider", "data_simulated", "provider_create"]
