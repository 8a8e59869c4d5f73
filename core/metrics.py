"""`GET /metrics`: Prometheus text for operators, on every host (staff session or Bearer METRICS_TOKEN).

Each web process answers for itself (its connections, frames, latency) and repeats the feed leader's
status. Prometheus scrapes each process at its own address (behind a proxy, a scrape reaches one of
them). Low-rate figures (webhooks) are prometheus_client counters in `REGISTRY`; the streaming hot
path counts with plain integers, read when scraped (streaming.metrics).
"""

import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from asgiref.sync import markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from streaming.hub import stream_hub_running
from streaming.metrics import FeedCollector, StreamCollector

from .access import operator_request
from .health import feed_details

REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, GC_COLLECTOR, PLATFORM_COLLECTOR):
    REGISTRY.register(_collector)

METRICS_PATH = "/metrics"
NOT_AN_OPERATOR = "Metrics are for operators: send Authorization: Bearer <METRICS_TOKEN>, or sign in as staff."


class Scrape:
    """One answer's collectors: the registry's, then this moment's streams and feed."""

    def __init__(self, *collectors: Collector | CollectorRegistry) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


async def metrics_text() -> bytes:
    """Runs on the event loop that serves the streams, so the hub is read where it changes."""
    hub = stream_hub_running()
    status = await hub.state.feed_status() if hub is not None else await sync_to_async(feed_details)()
    return generate_latest(Scrape(REGISTRY, StreamCollector(hub), FeedCollector(status, time.time())))


class MetricsMiddleware:
    """Answers `/metrics` before the host is looked at, like the health checks (scrapers use addresses).

    Async only: under ASGI it runs on the server's event loop, where the stream hub lives.
    """

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Coroutine[Any, Any, HttpResponse]]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path != METRICS_PATH:
            return await self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return JsonResponse({"error": "method_not_allowed", "message": "Use GET."}, status=405,
                                headers={"Allow": "GET, HEAD"})  # fmt: skip
        if not await sync_to_async(operator_request)(request):
            return JsonResponse(
                {"error": "not_authenticated", "message": NOT_AN_OPERATOR},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return HttpResponse(await metrics_text(), content_type=CONTENT_TYPE_LATEST)
