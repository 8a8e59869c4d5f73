"""Billing's pages: pricing (public host) and Stripe's webhook (public host)."""

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import gateway
from .events import stripe_event_process
from .selectors import plan_list_public

logger = logging.getLogger(__name__)


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
        return JsonResponse(
            {"error": "bad_signature", "message": "The Stripe-Signature does not check out."}, status=400
        )
    try:
        outcome = stripe_event_process(event=event)
    except gateway.GatewayError as exc:
        # Nothing was stored: Stripe retries the delivery later.
        logger.warning("Stripe event %s not processed: %s", event["id"], exc)
        return JsonResponse({"error": "stripe_unavailable", "message": str(exc)}, status=503)
    return JsonResponse({"received": event["id"], "outcome": outcome})
