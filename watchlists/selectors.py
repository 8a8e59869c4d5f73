"""Reads of watchlists; callers run inside the organisation's schema."""

from .models import Watchlist


def watchlist_symbols(*, watchlist_id: int) -> list[str] | None:
    """The ordered symbols of a watchlist of the current schema, or None when there is no such watchlist."""
    watchlist = Watchlist.objects.filter(pk=watchlist_id).only("symbols").first()
    return None if watchlist is None else list(watchlist.symbols)
