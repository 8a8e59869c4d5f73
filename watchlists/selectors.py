"""Reads of watchlists; callers run inside the organisation's schema."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from datetime import time as dt_time

from asgiref.sync import sync_to_async
from django.db.models import QuerySet
from django.db.models.functions import Lower

from streaming.state import Bar

from .models import Watchlist

DAY_MS = 86_400_000


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


async def watchlist_bars(*, symbols: list[str], day: date, delay_minutes: int) -> AsyncIterator[tuple[str, Bar]]:
    """The minute bars of `day` (UTC) that the plan's delay allows, symbol by symbol in the given order,
    one at a time: an export streams them with one symbol's bars in memory (a day at most, 390)."""
    # Imported here: streaming's feed imports billing, whose selectors import this module.
    from streaming.bars import bars_visible
    from streaming.feed import now_ms

    start = int(datetime.combine(day, dt_time.min, tzinfo=UTC).timestamp() * 1000)
    now = now_ms()  # one cut for the whole export, however long it takes
    read = sync_to_async(bars_visible, thread_sensitive=False)
    for symbol in symbols:
        visible = await read(
            symbols=[symbol], delay_minutes=delay_minutes, start_ms=start, end_ms=start + DAY_MS, now=now
        )
        for bar in visible.get(symbol, ()):
            yield symbol, bar
