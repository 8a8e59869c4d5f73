"""Stripe events as Stripe sends them: the JSON body and its Stripe-Signature header."""

import hashlib
import hmac
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from django.test import Client

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

from tests.billing.conftest import WEBHOOK_SECRET


def signed(event: dict[str, Any], *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> tuple[bytes, str]:
    """Stripe's scheme: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    body = json.dumps(event).encode()
    t = int(time.time()) if at is None else at
    signature = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={t},v1={signature}"


def deliver(client: Client, event: dict[str, Any], **signing: Any) -> "Response":
    body, header = signed(event, **signing)
    return client.post("/billing/webhook/", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


def subscription_event(
    kind: str,
    *,
    customer: str,
    status: str,
    price: str,
    created: int | None = None,
    subscription: str = "sub_test_1",
    event_id: str | None = None,
) -> dict[str, Any]:
    """A `customer.subscription.<kind>` event (created, updated or deleted)."""
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": f"customer.subscription.{kind}",
        "created": int(time.time()) if created is None else created,
        "data": {
            "object": {
                "id": subscription,
                "object": "subscription",
                "customer": customer,
                "status": status,
                "items": {"object": "list", "data": [{"price": {"id": price, "product": "prod_unknown"}}]},
            }
        },
    }
