"""An organisation's subscription: Checkout to start one, the Customer Portal to change it, cancellation."""

import logging

from django.db import transaction

from tenants.models import Membership, Organisation
from tenants.roles import admin_required

from . import gateway
from .conf import billing_settings
from .models import Plan

logger = logging.getLogger(__name__)


class BillingError(Exception):
    """Billing cannot do what was asked; the message says why and what to do instead."""


def _configured() -> None:
    if not billing_settings.is_configured:
        raise BillingError("Billing is not configured on this server yet: nobody can pay for now.")


def organisation_stripe_customer(*, organisation: Organisation, email: str) -> str:
    """The organisation's Stripe customer id, created once (the row is locked: two clicks make one customer)."""
    with transaction.atomic():
        locked = Organisation.objects.select_for_update().get(pk=organisation.pk)
        if not locked.stripe_customer_id:
            locked.stripe_customer_id = gateway.customer_create(
                name=locked.name, email=email, organisation_slug=locked.slug
            )
            locked.save(update_fields=["stripe_customer_id"])
    organisation.stripe_customer_id = locked.stripe_customer_id
    return locked.stripe_customer_id


def organisation_checkout_start(*, actor: Membership, plan_slug: str, success_url: str, cancel_url: str) -> str:
    """A Checkout Session for `plan_slug` (owners and admins); returns Stripe's URL to send the buyer to."""
    organisation = actor.organisation
    admin_required(actor=actor, action=f"change the plan of {organisation.name}")
    _configured()
    plan = Plan.objects.filter(slug=plan_slug, is_public=True).exclude(stripe_price_id="").first()
    if plan is None or plan.price_monthly <= 0:
        raise BillingError(f"The plan {plan_slug!r} cannot be bought here; choose a paid plan on the billing page.")
    if organisation.stripe_subscription_id:
        raise BillingError("This organisation already has a subscription: change its plan in the Customer Portal.")
    customer_id = organisation_stripe_customer(organisation=organisation, email=actor.user.email)
    return gateway.checkout_session_create(
        customer_id=customer_id,
        price_id=plan.stripe_price_id,
        organisation_slug=organisation.slug,
        plan_slug=plan.slug,
        success_url=success_url,
        cancel_url=cancel_url,
    )


def organisation_portal_start(*, actor: Membership, return_url: str) -> str:
    """A Customer Portal session (owners and admins): change plan, card, or cancel; returns its URL."""
    organisation = actor.organisation
    admin_required(actor=actor, action=f"manage the billing of {organisation.name}")
    _configured()
    if not organisation.stripe_customer_id:
        raise BillingError("This organisation has never paid: choose a plan first.")
    return gateway.portal_session_create(customer_id=organisation.stripe_customer_id, return_url=return_url)


def organisation_subscription_cancel(*, organisation: Organisation) -> None:
    """Cancel the organisation's subscription at Stripe now (it is being deleted: it stops paying at once).

    BillingError when Stripe cannot be told: the caller keeps the organisation rather than leave a
    subscription billing a customer nobody can reach any more.
    """
    if not organisation.stripe_subscription_id:
        return
    _configured()
    try:
        gateway.subscription_cancel(subscription_id=organisation.stripe_subscription_id)
    except gateway.GatewayError as exc:
        raise BillingError(f"The subscription could not be cancelled at Stripe ({exc}).") from exc
    logger.info("cancelled subscription %s of %s", organisation.stripe_subscription_id, organisation.slug)
