"""Writes that live connections must hear about; messages leave after the transaction commits."""

from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from tenants.models import Organisation

from .groups import control_group

GroupMessage = tuple[str, dict[str, Any]]


def organisations_notify_plan_changed(*, organisations: Iterable[Organisation]) -> None:
    """Tell the organisations' open connections to re-read their plan, once the change is committed."""
    _send_after_commit(
        [(control_group(o.schema_name), {"type": "plan.changed", "organisation_id": o.pk}) for o in organisations]
    )


def watchlist_notify_changed(*, schema_name: str, watchlist_id: int) -> None:
    """Tell the organisation's open connections that a watchlist changed (or went), once committed."""
    # Robust: the edit is saved whatever happens to the message, so a channel-layer outage is logged
    # (by Django) rather than turned into an error page for a change that did succeed.
    _send_after_commit(
        [(control_group(schema_name), {"type": "watchlist.changed", "watchlist_id": watchlist_id})], robust=True
    )


def widget_notify_changed(*, schema_name: str, widget_id: int) -> None:
    """Tell a widget's open viewers that it was edited, revoked or deleted (SPEC: within 2 seconds), once committed."""
    _send_after_commit([(control_group(schema_name), {"type": "widget.changed", "widget_id": widget_id})], robust=True)


def member_notify_removed(*, schema_name: str, user_id: int) -> None:
    """Close the removed member's open streams of this organisation, once committed."""
    _send_after_commit([(control_group(schema_name), {"type": "member.removed", "user_id": user_id})], robust=True)


def organisation_notify_deleted(*, schema_name: str) -> None:
    """Close every open stream of a deleted organisation, once committed."""
    _send_after_commit([(control_group(schema_name), {"type": "organisation.deleted"})], robust=True)


def alert_notify_fired(*, schema_name: str, alert: dict[str, Any]) -> None:
    """Show a fired alert on every open dashboard of the organisation (SPEC's alert object), once committed."""
    _send_after_commit([(control_group(schema_name), {"type": "alert.fired", "alert": alert})], robust=True)


def _send_after_commit(messages: list[GroupMessage], *, robust: bool = False) -> None:
    # Group names are built (and checked) now, so a bad schema name fails inside the transaction.
    if messages:
        transaction.on_commit(lambda: _group_send(messages), robust=robust)


def _group_send(messages: list[GroupMessage]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    send = async_to_sync(layer.group_send)
    for group, message in messages:
        send(group, message)
