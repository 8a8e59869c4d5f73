"""What the feed leader tells of every published batch (QuoteObserver): each feature adds its observer here."""

import asyncio

from .bars import BarRecorder
from .feed import QuoteObserver


def feed_observers() -> list[QuoteObserver]:
    """The observers `run_feed` gives its Feed."""
    from alerts.engine import AlertEngine  # alerts builds on streaming, not the other way round

    engine = AlertEngine()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop yet: the engine starts when its process first leads
    else:
        # At once, in standbys too: each keeps the alerts loaded for a quick take-over, and registers
        # their symbols (the feed quotes only watched symbols, so an alert nobody streams needs this).
        engine.start()
    return [BarRecorder(), engine]
