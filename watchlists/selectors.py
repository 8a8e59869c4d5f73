"""Reads of watchlists; callers run inside the organisation's schema."""

from django.db.models import QuerySet
from django.db.models.functions import Lower

from .models import Watchlist


def watchlist_list() -> QuerySet[Watchlist]:
    """Every watchlist of the current schema, by name (case-insensitive)."""
    return Watchlist.objects.order_by(Lower("name"), "id")


def watchlist_get(*, watchlist_id: int) -> Watchlist | None:
    """One watchlist of the current schema, or None (an id from another organisation finds nothing here)."""
    return Watchlist.objects.filter(pk=watchlist_id).first()


def watchlist_symbols(*, watchlist_id: int) -> list[str] | None:
    """The ordered symbols of a watchlist of the current schema, or None when there is no such watchlist."""
    watchlist = Watchlist.objects.filter(pk=watchlist_id).only("symbols").first()
    return None if watchlist is None else list(watchlist.symbols)
