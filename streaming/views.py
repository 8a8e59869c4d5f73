"""Staff's view of the market-data feed (in the admin): which provider leads, and how it is doing."""

import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from core.health import feed_details

from .providers import PROVIDER_LABELS


def feed_status(request: HttpRequest) -> HttpResponse:
    """`/admin/feed/`: the leader's last status (refreshed each second), or that no leader runs."""
    status = feed_details()
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Market data feed",
        "status": status,
        "configured": PROVIDER_LABELS.get(settings.MARKET_DATA_PROVIDER, settings.MARKET_DATA_PROVIDER),
    }
    if status is not None:
        now = time.time()
        context.update(
            provider=PROVIDER_LABELS.get(status.get("provider", ""), status.get("provider")),
            reported_ago=now - int(status.get("stored_ms", 0)) / 1000,
            last_quote=_moment(status.get("last_quote_ms")),
            unserved=sorted((status.get("unserved") or {}).items()),
        )
    return TemplateResponse(request, "admin/feed_status.html", context)


def _moment(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None
