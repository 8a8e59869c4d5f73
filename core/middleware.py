"""Health endpoints that answer on every host, before any tenant lookup."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from .access import operator_request
from .health import feed_details, readiness_checks


class HealthCheckMiddleware:
    """`GET /healthz` (process alive) and `GET /readyz` (database and channel layer reachable).

    `/readyz` tells anyone the status code; which check failed and why (host names, ports, driver
    messages) only staff and holders of METRICS_TOKEN, as it helps an attacker map the back end.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        if request.path == "/readyz":
            checks = readiness_checks()
            ready = all(state == "ok" for state in checks.values())
            body: dict[str, object] = {"status": "ok" if ready else "unavailable"}
            if operator_request(request):
                body["checks"] = checks
                body["feed"] = feed_details()
            return JsonResponse(body, status=200 if ready else 503)
        return self.get_response(request)
