"""Market-data providers behind one interface; `provider_create` picks one by name."""

from django.conf import settings

from .base import MarketDataProvider
from .simulated import SimulatedProvider

PROVIDERS = ("simulated",)


def provider_create(name: str | None = None) -> MarketDataProvider:
    """The provider named (default: MARKET_DATA_PROVIDER), configured from settings."""
    name = name or settings.MARKET_DATA_PROVIDER
    if name == "simulated":
        return SimulatedProvider(ticks_per_second=settings.SIMULATED_TICKS_PER_SECOND, seed=settings.SIMULATED_SEED)
    raise ValueError(f"Unknown market-data provider {name!r}; available: {', '.join(PROVIDERS)}.")


__all__ = ["PROVIDERS", "MarketDataProvider", "SimulatedProvider", "provider_create"]
