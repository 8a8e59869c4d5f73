"""What the feed leader tells of every published batch (QuoteObserver): each feature adds its observer here."""

from .bars import BarRecorder
from .feed import QuoteObserver


def feed_observers() -> list[QuoteObserver]:
    """The observers `run_feed` gives its Feed."""
    return [BarRecorder()]
