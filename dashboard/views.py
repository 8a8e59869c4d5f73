"""The organisation's live dashboard: one watchlist's quotes, streamed over the websocket."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from billing.limits import organisation_limits
from symbols.selectors import symbol_names
from tenants.models import Organisation
from watchlists.models import Watchlist


def dashboard(request: HttpRequest) -> HttpResponse:
    """Tenant host `/`: pick a watchlist (?watchlist=<id>, else the first) and watch it live."""
    organisation: Organisation = request.organisation  # type: ignore[attr-defined]
    watchlists = list(Watchlist.objects.order_by("name", "id"))
    selected = next((w for w in watchlists if str(w.pk) == request.GET.get("watchlist")), None)
    selected = selected or (watchlists[0] if watchlists else None)
    names = symbol_names(symbols=selected.symbols) if selected else {}
    return render(
        request,
        "dashboard/dashboard.html",
        {
            "limits": organisation_limits(organisation),
            "watchlists": watchlists,
            "selected": selected,
            "rows": [(symbol, names.get(symbol, "")) for symbol in (selected.symbols if selected else [])],
            "billing_url": reverse("billing"),  # the organisation's own billing page (upgrades, 4402)
        },
    )
