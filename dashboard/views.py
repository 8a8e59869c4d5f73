"""The organisation's live dashboard: one watchlist's quotes, streamed over the websocket."""

import logging

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from redis.exceptions import RedisError

from billing.limits import organisation_limits
from streaming.bars import bars_visible
from symbols.selectors import symbol_names
from tenants.models import Organisation
from watchlists.models import Watchlist

logger = logging.getLogger(__name__)


def dashboard(request: HttpRequest) -> HttpResponse:
    """Tenant host `/`: pick a watchlist (?watchlist=<id>, else the first) and watch it live."""
    organisation: Organisation = request.organisation  # type: ignore[attr-defined]
    watchlists = list(Watchlist.objects.order_by("name", "id"))
    selected = next((w for w in watchlists if str(w.pk) == request.GET.get("watchlist")), None)
    selected = selected or (watchlists[0] if watchlists else None)
    symbols = list(selected.symbols) if selected else []
    names = symbol_names(symbols=symbols)
    limits = organisation_limits(organisation)
    history = intraday_history(symbols=symbols, delay_minutes=limits.delay_minutes)
    return render(
        request,
        "dashboard/dashboard.html",
        {
            "limits": limits,
            "watchlists": watchlists,
            "selected": selected,
            "rows": [(symbol, names.get(symbol, ""), history.get(symbol, "")) for symbol in symbols],
            "billing_url": reverse("billing"),  # the organisation's own billing page (upgrades, 4402)
        },
    )


def intraday_history(*, symbols: list[str], delay_minutes: int) -> dict[str, str]:
    """Each symbol's minute bars as "minute:close minute:close …" (where the sparkline starts), only those
    the plan's delay allows."""
    try:
        bars = bars_visible(symbols=symbols, delay_minutes=delay_minutes)
    except RedisError:  # the page still works; the sparklines then start empty
        logger.warning("minute bars unavailable", exc_info=True)
        return {}
    return {symbol: " ".join(f"{bar.minute}:{bar.close}" for bar in items) for symbol, items in bars.items()}
