"""Local development: `make run`."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-change-me-in-production-0123456789")


def _bundled_replay() -> str:
    """`MARKET_DATA_PROVIDER=replay make run` without REPLAY_PATH: vega_datasets' monthly closes of five
    large caps, 2000–2010 (MIT, a dev dependency; real data, never installed in production)."""
    try:
        import vega_datasets
    except ImportError:
        return ""
    from pathlib import Path

    return str(Path(vega_datasets.__file__).parent / "_data" / "stocks.csv")


REPLAY_PATH = env.str("REPLAY_PATH", default=_bundled_replay())
