"""Stripe's webhook events: each processed once, in the same transaction as its effect.

An event's effect is on one organisation: its plan, its standing and its billing history. Stripe
does not promise the order of deliveries, so a subscription state is applied only when its event
is not older than the last one applied (`BillingAccount.subscription_event_at`); open connections
hear of a new plan or standing through `limits_changed`, after commit.
"""

import logging
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from tenants.db import activate_public_schema
from tenants.models import Organisation, SubscriptionStatus

from . import gateway
from .conf import billing_settings
from .limits import limits_changed
from .models import BillingAccount, BillingHistoryKind, Plan, StripeEvent
from .selectors import plan_get_default
from .services import billing_history_add

logger = logging.getLogger(__name__)

SUBSCRIPTION_EVENTS = frozenset(
    {"customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted"}
)
# Stripe statuses that end a subscription: the organisation goes back to the default plan.
ENDED = frozenset({"canceled", "incomplete_expired"})
DUPLICATE = "duplicate: already processed"
EVENT_ID_MAX_LENGTH = StripeEvent._meta.get_field("id").max_length or 255
EVENT_TYPE_MAX_LENGTH = StripeEvent._meta.get_field("type").max_length or 100
LATEST_TIMESTAMP = 253_402_300_799  # 9999-12-31 23:59:59 UTC, the last second a datetime holds


def stripe_event_process(*, event: dict[str, Any]) -> str:
    """Apply a verified event once; returns what was done (a duplicate id changes nothing).

    The event's id is inserted first, inside the transaction of its effect: a second delivery of
    the same id, even at the same moment, waits on the primary key and then finds it taken.
    A GatewayError (Stripe unreachable while re-reading a subscription) rolls everything back, so
    Stripe's retry finds the event unprocessed; so does a gateway.EventError (a field that is not
    Stripe's shape), which nothing retried will mend.
    """
    at, data = _event_read(event)
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = StripeEvent.objects.create(id=event["id"], type=event["type"], created_at_stripe=at)
        except IntegrityError:
            return DUPLICATE
        organisation, outcome = _event_apply(event, data, at=at)
        record.organisation, record.outcome = organisation, outcome[:200]
        record.save(update_fields=["organisation", "outcome"])
    logger.info("stripe event %s %s: %s", event["type"], event["id"], outcome)
    return outcome


def _event_read(event: dict[str, Any]) -> tuple[datetime, dict[str, Any]]:
    """The event's time and its object, checked before anything is stored (gateway.EventError if unreadable)."""
    for field, max_length in (("id", EVENT_ID_MAX_LENGTH), ("type", EVENT_TYPE_MAX_LENGTH)):
        if len(event[field]) > max_length or "\x00" in event[field]:  # PostgreSQL stores no NUL
            raise gateway.EventError(f"The event's {field} is not a string of at most {max_length} characters.")
    created = event.get("created") or 0
    if not isinstance(created, int) or isinstance(created, bool) or not 0 <= created <= LATEST_TIMESTAMP:
        raise gateway.EventError("The event's created is not a time in Unix seconds.")
    data = event.get("data") or {}
    found = (data.get("object") or {}) if isinstance(data, dict) else None
    if not isinstance(found, dict):
        raise gateway.EventError("The event's data.object is not a JSON object.")
    return datetime.fromtimestamp(created, tz=UTC), found


def _event_apply(event: dict[str, Any], data: dict[str, Any], *, at: datetime) -> tuple[Organisation | None, str]:
    kind = event["type"]
    if kind == "checkout.session.completed":
        return _checkout_completed(data, at=at, event_id=event["id"])
    if kind in SUBSCRIPTION_EVENTS:
        subscription = gateway.subscription_of(data)
        organisation = _organisation_locked(customer_id=subscription.customer_id)
        if organisation is None:
            return None, f"unknown customer {subscription.customer_id or '(none)'}"
        deleted = kind == "customer.subscription.deleted"
        return organisation, _subscription_apply(
            organisation, subscription, at=at, event_id=event["id"], deleted=deleted
        )
    if kind in ("invoice.paid", "invoice.payment_failed"):
        return _invoice(data, paid=kind == "invoice.paid", event_id=event["id"])
    return None, "ignored: not an event billing handles"


def _organisation_locked(*, slug: str = "", customer_id: str = "") -> Organisation | None:
    """The organisation named by slug (SPEC: the Checkout Session's client_reference_id), else by customer."""
    if not slug and not customer_id:
        return None
    rows = Organisation.objects.select_for_update().select_related("plan")
    if slug:
        found = rows.filter(slug=slug).first()
        if found is not None:
            return found
    return rows.filter(stripe_customer_id=customer_id).first() if customer_id else None


def _checkout_completed(data: dict[str, Any], *, at: datetime, event_id: str) -> tuple[Organisation | None, str]:
    customer_id = gateway.id_of(data.get("customer"))
    organisation = _organisation_locked(slug=str(data.get("client_reference_id") or ""), customer_id=customer_id)
    if organisation is None:
        return None, f"unknown organisation {data.get('client_reference_id')!r} / customer {customer_id!r}"
    if customer_id and organisation.stripe_customer_id != customer_id:
        organisation.stripe_customer_id = customer_id
        organisation.save(update_fields=["stripe_customer_id"])
    _history(organisation, BillingHistoryKind.CHECKOUT, "Checkout completed.", event_id)
    subscription_id = gateway.id_of(data.get("subscription"))
    # The subscription's own events may come before or after this one: read its state now, so the
    # plan starts with the first of them to arrive.
    subscription = gateway.subscription_retrieve(subscription_id=subscription_id) if subscription_id else None
    if subscription is None:
        return organisation, "checkout completed (no subscription to read)"
    return organisation, _subscription_apply(organisation, subscription, at=at, event_id=event_id, deleted=False)


def _plan_for_price(subscription: gateway.StripeSubscription) -> Plan | None:
    """The plan sold at the subscription's price; by its product when the price was replaced since."""
    if not subscription.price_id:
        return None
    query = Q(stripe_price_id=subscription.price_id)
    if subscription.product_id:
        query |= Q(stripe_product_id=subscription.product_id)
    plans = list(Plan.objects.filter(query))
    exact = [plan for plan in plans if plan.stripe_price_id == subscription.price_id]
    return (exact or plans)[0] if plans else None


def _subscription_apply(
    organisation: Organisation,
    subscription: gateway.StripeSubscription,
    *,
    at: datetime,
    event_id: str,
    deleted: bool,
) -> str:
    account, _ = BillingAccount.objects.select_for_update().get_or_create(organisation=organisation)
    if account.subscription_event_at is not None and at < account.subscription_event_at:
        return f"stale: {subscription.id} {subscription.status} is older than the state applied"
    current = organisation.stripe_subscription_id
    status = "canceled" if deleted else subscription.status
    if current and subscription.id != current and status not in ("active", "trialing"):
        return f"ignored: {subscription.id} is not the organisation's subscription ({current})"

    before = (organisation.plan_id, organisation.subscription_status, organisation.payment_grace_until)
    if status in ("active", "trialing"):
        plan = _plan_for_price(subscription)
        if plan is None:
            return f"unknown price {subscription.price_id or '(none)'}"
        organisation.plan = plan
        organisation.subscription_status = SubscriptionStatus(status)
        organisation.payment_grace_until = None
        organisation.stripe_subscription_id = subscription.id
        account.grace_expiry_sent = False
    elif status == "past_due":
        organisation.subscription_status = SubscriptionStatus.PAST_DUE
        if organisation.payment_grace_until is None:
            organisation.payment_grace_until = timezone.now() + billing_settings.payment_grace
            account.grace_expiry_sent = False
    elif status == "unpaid":
        organisation.subscription_status = SubscriptionStatus.UNPAID
    elif status in ENDED:
        organisation.plan = plan_get_default()
        organisation.subscription_status = SubscriptionStatus.ACTIVE
        organisation.payment_grace_until = None
        organisation.stripe_subscription_id = ""
    else:  # incomplete, paused: nothing is paid or owed yet; the plan stays as it is
        return f"ignored: status {status}"

    account.subscription_event_at, account.stripe_status = at, status
    account.save()
    organisation.save(update_fields=["plan", "subscription_status", "payment_grace_until", "stripe_subscription_id"])
    after = (organisation.plan_id, organisation.subscription_status, organisation.payment_grace_until)
    if after == before:
        return f"applied: {status}, nothing changed"
    limits_changed(organisations=[organisation])
    if after[0] != before[0]:
        what = f"Plan is now {organisation.plan.name} (subscription {status})."
        _history(organisation, BillingHistoryKind.PLAN, what, event_id)
    else:
        what = f"Subscription is {SubscriptionStatus(organisation.subscription_status).label.lower()}."
        if organisation.payment_grace_until is not None:
            what += f" Streams keep working until {organisation.payment_grace_until:%Y-%m-%d %H:%M} UTC."
        _history(organisation, BillingHistoryKind.STANDING, what, event_id)
    return f"applied: {what}"


def _invoice(data: dict[str, Any], *, paid: bool, event_id: str) -> tuple[Organisation | None, str]:
    invoice = gateway.invoice_of(data, paid=paid)
    organisation = _organisation_locked(customer_id=invoice.customer_id)
    if organisation is None:
        return None, f"unknown customer {invoice.customer_id or '(none)'}"
    amount = f"{invoice.amount / 100:.2f} {invoice.currency.upper()}"
    if paid:
        _history(organisation, BillingHistoryKind.PAYMENT, f"Paid {amount} (invoice {invoice.id}).", event_id)
    else:
        what = f"A payment of {amount} failed (invoice {invoice.id}); update the card in the Customer Portal."
        _history(organisation, BillingHistoryKind.PAYMENT_FAILED, what, event_id)
    return organisation, f"recorded invoice {invoice.id}"


def _history(organisation: Organisation, kind: BillingHistoryKind, description: str, event_id: str) -> None:
    billing_history_add(organisation=organisation, kind=kind, description=description, stripe_event_id=event_id)


def organisations_grace_expired_notify(*, now: datetime | None = None) -> list[Organisation]:
    """Past-due organisations whose grace ended: their open streams re-read their standing (and close, 4402)."""
    now = now or timezone.now()
    # The feed leader runs this on any thread of its pool: the schema is set here, where the queries run.
    activate_public_schema()
    with transaction.atomic():
        expired = list(
            Organisation.objects.select_for_update(of=("self",))
            .filter(subscription_status=SubscriptionStatus.PAST_DUE, payment_grace_until__lte=now)
            .exclude(billing__grace_expiry_sent=True)
        )
        for organisation in expired:
            BillingAccount.objects.update_or_create(organisation=organisation, defaults={"grace_expiry_sent": True})
            _history(organisation, BillingHistoryKind.STANDING, "The grace period ended: streams are paused.", "")
        limits_changed(organisations=expired)
    return expired
