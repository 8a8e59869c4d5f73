"""HTTP reads of the symbol directory: search for autocomplete."""

from django.http import HttpRequest, JsonResponse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET

from . import selectors


@require_GET
def symbol_search(request: HttpRequest) -> JsonResponse:
    """`GET /symbols/search/?q=app`: up to 10 directory entries, exact ticker, ticker prefix, then name."""
    entries = selectors.symbol_search(query=request.GET.get("q", ""))
    results = [
        {"symbol": e.symbol, "name": e.name, "exchange": e.exchange, "exchange_ticker": e.exchange_ticker}
        for e in entries
    ]
    response = JsonResponse({"results": results})
    # Typing back over the same letters asks again; the directory changes rarely.
    patch_cache_control(response, private=True, max_age=300)
    return response
