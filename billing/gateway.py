"""The one module that talks to Stripe (stripe-python); everything else calls these functions.

Each function sends one request and returns plain values, so nothing outside this module imports
`stripe` or reads Stripe's object shapes. `STRIPE_API_BASE` points every call at a local fake in
tests (localstripe, or a loopback server that answers as Stripe does).

Monthly prices are created through Stripe's Plans endpoint: a Plan is a Price in Stripe (its id is
accepted wherever a price id is, Checkout included), and localstripe implements only that endpoint.
"""

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import stripe

from .conf import WEBHOOK_TOLERANCE_SECONDS, billing_settings

logger = logging.getLogger(__name__)


class GatewayError(Exception):
    """Stripe could not be reached or refused a request; the message says which and why."""


class NotConfiguredError(GatewayError):
    """STRIPE_SECRET_KEY is not set: billing is not configured."""


class SignatureError(Exception):
    """A webhook whose signature or timestamp does not check out."""


class EventError(ValueError):
    """A signed event whose content is not Stripe's shape (a field missing, of another type, too long)."""


ID_MAX_LENGTH = 120  # the narrowest column a Stripe id is stored in (Organisation.stripe_customer_id)
AMOUNT_MAX = 10**15  # minor units; Stripe's own limit is 8 digits


@dataclass(frozen=True)
class StripeProduct:
    id: str
    name: str
    active: bool


@dataclass(frozen=True)
class StripePrice:
    id: str
    product_id: str
    unit_amount: int  # in the currency's minor unit (cents)
    currency: str
    interval: str
    active: bool


@dataclass(frozen=True)
class StripeSubscription:
    id: str
    customer_id: str
    status: str
    price_id: str
    product_id: str


@dataclass(frozen=True)
class StripeInvoice:
    id: str
    customer_id: str
    subscription_id: str
    amount: int  # paid (invoice.paid) or due (payment failed), in the currency's minor unit
    currency: str


@lru_cache(maxsize=4)
def _client_for(api_key: str, api_base: str, timeout: float) -> stripe.StripeClient:
    base = {"api": api_base.rstrip("/")} if api_base else None
    # Retries: Stripe's idempotency keys make a retried POST safe; 2 covers a dropped connection.
    return stripe.StripeClient(
        api_key,
        base_addresses=base,  # type: ignore[arg-type]
        max_network_retries=2,
        http_client=stripe.new_default_http_client(timeout=timeout),
    )


def _client() -> stripe.StripeClient:
    if not billing_settings.is_configured:
        raise NotConfiguredError("Billing is not configured: STRIPE_SECRET_KEY is not set.")
    return _client_for(
        billing_settings.stripe_secret_key, billing_settings.stripe_api_base, billing_settings.stripe_timeout_seconds
    )


def _call(what: str, request: Any, *args: Any, missing_ok: bool = False, **kwargs: Any) -> Any:
    """One request; GatewayError if it fails (None for a 404 when `missing_ok`: a read of a gone object)."""
    try:
        return request(*args, **kwargs)
    except stripe.InvalidRequestError as exc:
        if missing_ok and exc.http_status == 404:
            return None
        raise GatewayError(f"Stripe refused to {what}: {exc.user_message or exc}") from exc
    except stripe.StripeError as exc:
        raise GatewayError(f"Could not {what} at Stripe: {exc.user_message or exc}") from exc


def _is_true(value: object) -> bool:
    # Stripe answers JSON booleans; localstripe echoes a form-encoded "false" back as a string.
    return value is True or value == "true"


def _price_of(plan: Any) -> StripePrice:
    product = plan["product"]
    return StripePrice(
        id=str(plan["id"]),
        product_id=str(product if isinstance(product, str) else product["id"]),
        unit_amount=int(plan["amount"] or 0),
        currency=str(plan["currency"]),
        interval=str(plan["interval"]),
        active=_is_true(plan["active"]),
    )


def product_create(*, name: str, plan_slug: str) -> StripeProduct:
    params = {"name": name, "metadata": {"plan": plan_slug}}
    product = _call("create a product", _client().v1.products.create, params=params)
    return StripeProduct(id=str(product["id"]), name=str(product["name"]), active=_is_true(product["active"]))


def product_retrieve(*, product_id: str) -> StripeProduct | None:
    product = _call("read a product", _client().v1.products.retrieve, product_id, missing_ok=True)
    if product is None:
        return None
    return StripeProduct(id=str(product["id"]), name=str(product["name"]), active=_is_true(product["active"]))


def product_rename(*, product_id: str, name: str) -> None:
    _call("rename a product", _client().v1.products.update, product_id, params={"name": name})


def price_create(*, product_id: str, unit_amount: int, currency: str) -> StripePrice:
    """A new monthly price of the product (prices are immutable: a change makes a new one)."""
    params = {"product": product_id, "amount": unit_amount, "currency": currency, "interval": "month"}
    return _price_of(_call("create a price", _client().v1.plans.create, params=params))


def price_retrieve(*, price_id: str) -> StripePrice | None:
    plan = _call("read a price", _client().v1.plans.retrieve, price_id, missing_ok=True)
    return None if plan is None else _price_of(plan)


def price_archive(*, price_id: str) -> None:
    """No new subscription can use the price; existing ones keep it until they change plan."""
    _call("archive a price", _client().v1.plans.update, price_id, params={"active": False})


def customer_create(*, name: str, email: str, organisation_slug: str) -> str:
    params = {"name": name, "email": email, "metadata": {"organisation": organisation_slug}}
    return str(_call("create a customer", _client().v1.customers.create, params=params)["id"])


def checkout_session_create(
    *, customer_id: str, price_id: str, organisation_slug: str, plan_slug: str, success_url: str, cancel_url: str
) -> str:
    """A subscription-mode Checkout Session for one monthly price; returns the URL to send the buyer to."""
    metadata = {"organisation": organisation_slug, "plan": plan_slug}
    params = {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": organisation_slug,
        "line_items": [{"price": price_id, "quantity": 1}],
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    session = _call("start a Checkout session", _client().v1.checkout.sessions.create, params=params)
    return str(session["url"])


def portal_session_create(*, customer_id: str, return_url: str) -> str:
    """A Customer Portal session; returns its URL."""
    params = {"customer": customer_id, "return_url": return_url}
    return str(_call("open the Customer Portal", _client().v1.billing_portal.sessions.create, params=params)["url"])


def subscription_of(data: Mapping[str, Any]) -> StripeSubscription:
    """Read a subscription object as Stripe sends it (in an event, or from the API); EventError if it is not one."""
    items = _mapping(data.get("items")).get("data") or []
    if not isinstance(items, list):
        raise EventError("The subscription's items.data is not a list.")
    item = _mapping(items[0]) if items else {}
    price = item.get("price") or item.get("plan") or data.get("plan") or {}
    price = price if isinstance(price, Mapping) else {"id": price}
    return StripeSubscription(
        id=_required_id(data, "subscription"),
        customer_id=id_of(data.get("customer")),
        status=_text(data.get("status"), "status", max_length=30),
        price_id=id_of(price),
        product_id=id_of(price.get("product")),
    )


def invoice_of(data: Mapping[str, Any], *, paid: bool) -> StripeInvoice:
    """Read an invoice object as Stripe sends it in an event; EventError if it is not one."""
    amount = data.get("amount_paid" if paid else "amount_due") or 0
    if not isinstance(amount, int) or isinstance(amount, bool) or abs(amount) > AMOUNT_MAX:
        raise EventError("The invoice's amount is not a whole number of minor units.")
    return StripeInvoice(
        id=_required_id(data, "invoice"),
        customer_id=id_of(data.get("customer")),
        subscription_id=id_of(data.get("subscription")),
        amount=amount,
        currency=_text(data.get("currency"), "currency", max_length=10),
    )


def id_of(value: object) -> str:
    """An expandable field's id, whether Stripe sent the id or the object ("" when absent)."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return _text(value, "id", max_length=ID_MAX_LENGTH)


def _required_id(data: Mapping[str, Any], what: str) -> str:
    found = id_of(data.get("id"))
    if not found:
        raise EventError(f"The {what} has no id.")
    return found


def _text(value: object, field: str, *, max_length: int) -> str:
    """A string field of a Stripe object ("" when absent)."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > max_length or "\x00" in value:  # PostgreSQL stores no NUL
        raise EventError(f"{field} is not a string of at most {max_length} characters.")
    return value


def _mapping(value: object) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise EventError("An object of the event is not a JSON object.")
    return value


def subscription_retrieve(*, subscription_id: str) -> StripeSubscription | None:
    subscription = _call("read a subscription", _client().v1.subscriptions.retrieve, subscription_id, missing_ok=True)
    return None if subscription is None else subscription_of(subscription.to_dict())


def subscription_cancel(*, subscription_id: str) -> None:
    """Cancel now (an organisation that is deleted stops paying at once); a gone subscription is fine."""
    _call("cancel a subscription", _client().v1.subscriptions.cancel, subscription_id, missing_ok=True)


def event_verify(*, payload: bytes, signature: str) -> dict[str, Any]:
    """The event in a webhook body whose Stripe-Signature checks out within the tolerance; else SignatureError."""
    secret = billing_settings.stripe_webhook_secret
    if not secret:
        raise SignatureError("STRIPE_WEBHOOK_SECRET is not set: no webhook can be verified.")
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(text, signature, secret, WEBHOOK_TOLERANCE_SECONDS)
        event = json.loads(text)
    except (UnicodeDecodeError, ValueError, stripe.SignatureVerificationError) as exc:
        raise SignatureError(str(exc)) from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise SignatureError("The body is not a Stripe event.")
    return cast(dict[str, Any], event)
