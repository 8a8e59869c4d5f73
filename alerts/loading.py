"""What the alert engine reads from the database: organisations' plans, their alerts, pending webhook attempts.

Synchronous, for the engine's worker threads. One query on the public schema gives every
organisation's delay, alert allowance and standing; then one query per organisation schema (at
start, when its alerts changed, and every few minutes as a safety net) gives its rules. A schema
dropped in between (an organisation deleted) is skipped.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError
from django_tenants.utils import schema_context

from streaming.access import standing_refusal_of
from tenants.models import Organisation

from .deliveries import deliveries_pending
from .index import Kind, Rule
from .models import Alert

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OrganisationPlan:
    """What the engine needs of an organisation: the delay its alerts see, how many count, whether they fire."""

    schema: str
    delay_minutes: int
    max_alerts: int
    firing: bool  # False while the subscription is lapsed past its grace period


@dataclass(frozen=True)
class SchemaAlerts:
    plan: OrganisationPlan
    rules: list[Rule]
    quiet_until: dict[int, int]  # alert id → ms, from the last firing and the cooldown


def organisation_plans() -> dict[str, OrganisationPlan]:
    """Every organisation, by schema."""
    rows = Organisation.objects.values_list(
        "schema_name", "name", "subscription_status", "payment_grace_until",
        "plan__realtime", "plan__delay_minutes", "plan__max_alerts",
    )  # fmt: skip
    return {
        schema: OrganisationPlan(
            schema=schema,
            delay_minutes=0 if realtime else delay,
            max_alerts=max_alerts,
            firing=standing_refusal_of(name, status, grace_until) is None,
        )
        for schema, name, status, grace_until, realtime, delay, max_alerts in rows
    }


def schema_alerts(*, plan: OrganisationPlan) -> SchemaAlerts | None:
    """The organisation's active alerts among its oldest `max_alerts`; None when its schema is gone."""
    if not plan.firing or plan.max_alerts == 0:
        return SchemaAlerts(plan, [], {})
    try:
        with schema_context(plan.schema):
            rows = list(
                Alert.objects.order_by("id").values_list(
                    "pk", "symbol", "condition", "level", "cooldown_seconds", "active", "last_fired_ts"
                )[: plan.max_alerts]
            )
    except DatabaseError:
        logger.info("alerts of %s could not be read (deleted meanwhile?)", plan.schema, exc_info=True)
        return None
    rules: list[Rule] = []
    quiet: dict[int, int] = {}
    for pk, symbol, condition, level, cooldown, active, last_fired in rows:
        if not active:
            continue
        rules.append(Rule(plan.schema, pk, symbol, Kind(condition), float(level), cooldown * 1000))
        if last_fired is not None:
            quiet[pk] = last_fired + cooldown * 1000
    return SchemaAlerts(plan, rules, quiet)


def alerts_load(*, plans: dict[str, OrganisationPlan], schemas: set[str] | None = None) -> dict[str, SchemaAlerts]:
    """The alerts of these schemas (all by default); a schema that could not be read is left out."""
    loaded: dict[str, SchemaAlerts] = {}
    for schema in sorted(plans if schemas is None else schemas & set(plans)):
        alerts = schema_alerts(plan=plans[schema])
        if alerts is not None:
            loaded[schema] = alerts
    return loaded


def deliveries_pending_all(*, schemas: set[str]) -> list[tuple[str, datetime, int]]:
    """Every pending webhook attempt of these schemas: (schema, due, id)."""
    pending: list[tuple[str, datetime, int]] = []
    for schema in sorted(schemas):
        try:
            pending.extend((schema, due, pk) for due, pk in deliveries_pending(schema=schema))
        except DatabaseError:
            logger.info("webhook deliveries of %s could not be read", schema, exc_info=True)
    return pending
