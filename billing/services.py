"""Writes of plans and of an organisation's plan; open connections apply the new limits after commit."""

from collections.abc import Iterable

from django.db import transaction

from tenants.models import Organisation

from .limits import limits_changed
from .models import LIMIT_FIELDS, BillingHistory, BillingHistoryKind, Plan

# An organisation's fields that decide what its connections may do (its plan, its standing).
ORGANISATION_LIMIT_FIELDS = frozenset({"plan", "subscription_status", "payment_grace_until"})


def plan_save(*, plan: Plan, changed: Iterable[str]) -> Plan:
    """Save a plan edited by staff; when its limits changed, its organisations' connections follow."""
    with transaction.atomic():
        plan.save()
        if set(LIMIT_FIELDS).intersection(changed):
            limits_changed(organisations=plan.organisations.all())
    return plan


def organisation_billing_save(*, organisation: Organisation, changed: Iterable[str]) -> Organisation:
    """Save an organisation edited by staff; a new plan or standing reaches its connections (a rename does not)."""
    with transaction.atomic():
        organisation.save()
        if ORGANISATION_LIMIT_FIELDS.intersection(changed):
            limits_changed(organisations=[organisation])
        if "plan" in changed:
            what = f"Plan set to {organisation.plan.name} by Tickerdeck staff."
            billing_history_add(organisation=organisation, kind=BillingHistoryKind.PLAN, description=what)
    return organisation


def billing_history_add(
    *, organisation: Organisation, kind: BillingHistoryKind, description: str, stripe_event_id: str = ""
) -> BillingHistory:
    """One line of the organisation's billing history (every change of plan writes one)."""
    return BillingHistory.objects.create(
        organisation=organisation, kind=kind, description=description[:300], stripe_event_id=stripe_event_id
    )
