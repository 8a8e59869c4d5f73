"""django-csp's middleware, with the page's own websocket origin named in connect-src."""

from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from csp.middleware import PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase


class CSPMiddleware(DjangoCSPMiddleware):
    """CSP3 browsers count ws:/wss: on the page's own host as 'self'; older ones (Safari before 15.4)
    do not, and the dashboard's quotes arrive over a websocket to the page's host. That host is
    named, and no other: one organisation's page has no business opening another's stream."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        source = websocket_source(request)
        if source is not None:
            update = dict(parts.update or {})
            update["connect-src"] = [*update.get("connect-src", []), source]
            parts.update = update
        return parts


def websocket_source(request: HttpRequest) -> str | None:
    """`wss://<host>` (or `ws://` over plain HTTP) of this request, or None for a refused host."""
    try:
        host = request.get_host()
    except DisallowedHost:
        return None  # django-tenants has answered it with a bare 404: 'self' is all it gets
    return f"{'wss' if request.is_secure() else 'ws'}://{host}"
