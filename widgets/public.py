"""What any web site may load from an organisation's host: a widget's script and its viewer tokens.

No session, no CSRF token: the script is public, and a token is only handed, with CORS headers, to
an Origin in the widget's list (or the organisation's own pages, for the preview).
"""

from functools import cache
from hashlib import sha256
from pathlib import Path

import rjsmin
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import condition, require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from core.ratelimit import address_limiter, client_address
from tenants.middleware import request_organisation

from .access import origin_allowed
from .origins import request_origin
from .selectors import widget_by_public_id
from .tokens import token_seconds, widget_token_issue

EMBED_SCRIPT = Path(__file__).resolve().parent / "embed" / "embed.js"
SCRIPT_MAX_AGE = 300
PREFLIGHT_MAX_AGE = 600


@cache
def embed_script() -> tuple[bytes, str]:
    """The script, minified, and its ETag: made once per process."""
    body = rjsmin.jsmin(EMBED_SCRIPT.read_text()).encode()
    return body, f'"{sha256(body).hexdigest()[:32]}"'


@login_not_required
@require_GET
@gzip_page
@condition(etag_func=lambda request, public_id: embed_script()[1])
def embed_js(request: HttpRequest, public_id: str) -> HttpResponse:
    """The same script for every widget: it reads its widget's id from its own URL."""
    if widget_by_public_id(public_id=public_id) is None:
        return HttpResponse("// No such widget.\n", status=404, content_type="text/javascript; charset=utf-8")
    response = HttpResponse(embed_script()[0], content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={SCRIPT_MAX_AGE}"
    # Loaded by other sites' pages, including ones that isolate themselves (COEP).
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@login_not_required
@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
@vary_on_headers("Origin")
def token(request: HttpRequest, public_id: str) -> HttpResponse:
    """`{"token", "expires_in"}` with CORS headers for an allowed Origin; 403 otherwise, readable (a CORS
    header) only by an allowed Origin of a widget turned off; 429 past the per-address limit."""
    verdict = address_limiter().hit("widget_token", client_address(request))  # every request counts
    origin = request_origin(request.headers.get("Origin", ""))
    widget = widget_by_public_id(public_id=public_id)
    allowed = widget is not None and origin is not None and origin_allowed(widget, origin, own_origin(request))
    if not verdict.allowed:
        return _rate_limited(verdict.retry_after, origin if allowed else None)
    if widget is None:
        return _refusal(404, "not_found", "No such widget.")
    if not widget.active:
        refusal = _refusal(403, "forbidden", "This widget has been turned off by its organisation.")
        if allowed:  # a site on its list may read why, so its embed script stops for good instead of retrying
            refusal["Access-Control-Allow-Origin"] = str(origin)
        return refusal
    if origin is None or not allowed:
        return _refusal(403, "forbidden", "This widget is not allowed on this web site.")
    if request.method == "OPTIONS":  # a preflight; the embed script's own request needs none
        response = HttpResponse(status=204)
        response["Access-Control-Allow-Methods"] = "POST"
        response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    else:
        issued = widget_token_issue(
            schema_name=request_organisation(request).schema_name, public_id=widget.public_id, origin=origin
        )
        response = JsonResponse({"token": issued, "expires_in": token_seconds()})
    response["Access-Control-Allow-Origin"] = origin
    response["Cache-Control"] = "no-store"
    return response


def own_origin(request: HttpRequest) -> str | None:
    """The organisation's own pages' origin, as this request reached us."""
    return request_origin(f"{request.scheme}://{request.get_host()}")


def _rate_limited(retry_after: int, allowed_origin: str | None) -> JsonResponse:
    """429 with Retry-After, readable (a CORS header, Retry-After exposed) only by a site on the widget's list."""
    response = _refusal(
        429, "rate_limited", f"Too many token requests from your network address; try again in {retry_after} s."
    )
    response["Retry-After"] = str(retry_after)
    if allowed_origin is not None:
        response["Access-Control-Allow-Origin"] = allowed_origin
        response["Access-Control-Expose-Headers"] = "Retry-After"
    return response


def _refusal(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse({"error": code, "message": message}, status=status)
    response["Cache-Control"] = "no-store"
    return response
