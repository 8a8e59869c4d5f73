"""Billing's pages: pricing and Stripe's webhook (public host); billing, Checkout and Portal (organisation host)."""

import logging

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from prometheus_client import Counter

from core.metrics import REGISTRY
from tenants.middleware import request_membership

from . import gateway
from .conf import billing_settings
from .events import DUPLICATE, stripe_event_process
from .models import Plan
from .selectors import organisation_billing_overview, plan_list_public
from .subscriptions import BillingError, organisation_checkout_start, organisation_portal_start

logger = logging.getLogger(__name__)

STRIPE_WEBHOOKS = Counter(
    "tickerdeck_stripe_webhooks",
    "Stripe webhook deliveries by result: processed, duplicate, bad_signature, bad_event, stripe_unavailable.",
    ["result"],
    registry=REGISTRY,
)


def pricing(request: HttpRequest) -> HttpResponse:
    """The public pricing page, read from the database on every request."""
    return render(request, "billing/pricing.html", {"plans": plan_list_public()})


@csrf_exempt  # Stripe signs the body instead (checked on the raw bytes before anything is parsed)
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """SPEC's `POST /billing/webhook/`: 400 unless signed within 5 minutes, 200 once processed (or a duplicate)."""
    try:
        event = gateway.event_verify(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
    except gateway.SignatureError as exc:
        logger.warning("refused a Stripe webhook: %s", exc)
        STRIPE_WEBHOOKS.labels("bad_signature").inc()
        return JsonResponse(
            {"error": "bad_signature", "message": "The Stripe-Signature does not check out."}, status=400
        )
    try:
        outcome = stripe_event_process(event=event)
    except gateway.EventError as exc:
        # Signed, so from Stripe (or whoever holds the secret), but not Stripe's shape: nothing was stored.
        logger.warning("Stripe event %s not readable: %s", event["id"][:80], exc)
        STRIPE_WEBHOOKS.labels("bad_event").inc()
        return JsonResponse({"error": "bad_event", "message": f"The event could not be read: {exc}"}, status=400)
    except gateway.GatewayError as exc:
        # Nothing was stored: Stripe retries the delivery later.
        logger.warning("Stripe event %s not processed: %s", event["id"], exc)
        STRIPE_WEBHOOKS.labels("stripe_unavailable").inc()
        return JsonResponse({"error": "stripe_unavailable", "message": str(exc)}, status=503)
    STRIPE_WEBHOOKS.labels("duplicate" if outcome == DUPLICATE else "processed").inc()
    return JsonResponse({"received": event["id"], "outcome": outcome})


# -- an organisation's host: its billing page, Checkout and the Customer Portal ----------------------


def billing_page(request: HttpRequest) -> HttpResponse:
    """Plan, limits, usage and history for every member; buttons for owners and admins."""
    organisation = request_membership(request).organisation
    overview = organisation_billing_overview(organisation=organisation)
    return stripe_redirects_allowed(render(request, "billing/billing.html", {"overview": overview}))


def stripe_redirects_allowed(response: HttpResponse) -> HttpResponse:
    """Let this page's forms end on Stripe: Chromium applies CSP form-action to a post's redirects too."""
    response._csp_update = {"form-action": billing_settings.redirect_origins}  # type: ignore[attr-defined]
    return response


@require_POST
def checkout(request: HttpRequest, plan_slug: str) -> HttpResponse:
    """SPEC: 303 to a Stripe Checkout Session for the plan."""
    success = request.build_absolute_uri(reverse("billing_success")) + f"?plan={plan_slug}"
    try:
        url = organisation_checkout_start(
            actor=request_membership(request),
            plan_slug=plan_slug,
            success_url=success,
            cancel_url=request.build_absolute_uri(reverse("billing_cancel")),
        )
    except (BillingError, gateway.GatewayError) as exc:
        messages.error(request, str(exc))
        return redirect("billing")
    return HttpResponseRedirect(url, status=303)


@require_POST
def portal(request: HttpRequest) -> HttpResponse:
    """SPEC: 303 to the Stripe Customer Portal."""
    try:
        url = organisation_portal_start(
            actor=request_membership(request), return_url=request.build_absolute_uri(reverse("billing"))
        )
    except (BillingError, gateway.GatewayError) as exc:
        messages.error(request, str(exc))
        return redirect("billing")
    return HttpResponseRedirect(url, status=303)


def checkout_start(request: HttpRequest, plan_slug: str) -> HttpResponse:
    """After "Start with <plan>" and sign-up: a page whose form posts itself on to Checkout (CSRF-safe)."""
    plan = get_object_or_404(Plan, slug=plan_slug, is_public=True)
    return stripe_redirects_allowed(render(request, "billing/start.html", {"plan": plan}))


def checkout_success(request: HttpRequest) -> HttpResponse:
    """Back from Checkout: "activating…" (the page reloads itself) until Stripe's webhook has landed."""
    organisation = request_membership(request).organisation
    organisation.refresh_from_db(fields=["plan", "subscription_status"])
    wanted = Plan.objects.filter(slug=request.GET.get("plan", "")).first()
    active = wanted is None or organisation.plan_id == wanted.pk
    return render(request, "billing/success.html", {"wanted": wanted, "active": active})


def checkout_cancel(request: HttpRequest) -> HttpResponse:
    return render(request, "billing/cancel.html")
