"""Reads of widgets; callers run inside the organisation's schema (viewer counts come from the lease store)."""

from collections import Counter

from django.db.models import QuerySet
from django.db.models.functions import Lower

from streaming.state import LeaseKind, lease_ids_sync
from tenants.models import Organisation

from .leases import lease_widget_id
from .models import Widget


def widget_list() -> QuerySet[Widget]:
    """Every widget of the current schema, by name (case-insensitive)."""
    return Widget.objects.select_related("watchlist").order_by(Lower("name"), "id")


def widget_get(*, widget_id: int) -> Widget | None:
    """One widget of the current schema, or None (an id from another organisation finds nothing here)."""
    return Widget.objects.select_related("watchlist").filter(pk=widget_id).first()


def widget_by_public_id(*, public_id: str) -> Widget | None:
    return Widget.objects.filter(public_id=public_id).first()


def widget_viewers(*, organisation: Organisation) -> Counter[int]:
    """Open viewers per widget id now (their leases; the total is what `max_widget_viewers` limits)."""

    counts: Counter[int] = Counter()
    for lease_id in lease_ids_sync(LeaseKind.WIDGET, organisation.schema_name):
        widget_id = lease_widget_id(lease_id)
        if widget_id is not None:
            counts[widget_id] += 1
    return counts
