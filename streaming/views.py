"""HTTP reads of the streaming app: the symbol directory's search for autocomplete."""

from django.http import HttpRequest, JsonResponse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET

from . import directory


@require_GET
def symbol_search(request: HttpRequest) -> JsonResponse:
    """`GET /symbols/search/?q=app`: up to 10 directory entries, exact ticker, ticker prefix, then name."""
    entries = directory.symbol_search(query=request.GET.get("q", ""))
    response = JsonResponse(
        {"results": [{"symbol": e.symbol, "name": e.name, "exchange": e.exchange} for e in entries]}
    )
    # Typing back over the same letters asks again; the directory changes rarely.
    patch_cache_control(response, private=True, max_age=300)
    return response
