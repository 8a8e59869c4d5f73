"""Writes that live connections must hear about; messages leave after the transaction commits."""

from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from tenants.models import Organisation

from .groups import control_group


def organisations_notify_plan_changed(*, organisations: Iterable[Organisation]) -> None:
    """Tell the organisations' open connections to re-read their plan, once the change is committed."""
    targets = [(o.pk, o.schema_name) for o in organisations]
    if targets:
        transaction.on_commit(lambda: _send_plan_changed(targets))


def _send_plan_changed(targets: list[tuple[int, str]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    send = async_to_sync(layer.group_send)
    for organisation_id, schema_name in targets:
        send(control_group(schema_name), {"type": "plan.changed", "organisation_id": organisation_id})
