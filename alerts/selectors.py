"""Reads of alerts, their history and the webhook settings; callers run inside the organisation's schema."""

from django.db.models import Prefetch, QuerySet

from .models import Alert, AlertEvent, AlertSettings, WebhookDelivery


def alert_list() -> QuerySet[Alert]:
    """Every alert of the current schema, by symbol then name."""
    return Alert.objects.order_by("symbol", "name", "id")


def alert_get(*, alert_id: int) -> Alert | None:
    """One alert of the current schema, or None (an id from another organisation finds nothing here)."""
    return Alert.objects.filter(pk=alert_id).first()


def alert_ids_evaluated(*, max_alerts: int) -> set[int]:
    """The alerts the engine evaluates: the oldest `max_alerts` (after a downgrade the rest wait)."""
    return set(Alert.objects.order_by("id").values_list("pk", flat=True)[:max_alerts])


def alert_settings_get() -> AlertSettings | None:
    """The organisation's webhook settings, or None before anyone saved them."""
    return AlertSettings.objects.filter(pk=1).first()


def event_list() -> QuerySet[AlertEvent]:
    """Fired alerts, newest first, each with its webhook deliveries in attempt order."""
    return AlertEvent.objects.order_by("-fired_at", "-id").prefetch_related(
        Prefetch("deliveries", queryset=WebhookDelivery.objects.order_by("attempt"))
    )
