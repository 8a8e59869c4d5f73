"""Fuzzing the HTTP side: the owners' forms (watchlists, widgets, alerts) and Stripe's webhook.

A form post with any field values is answered 200 or 400 with the form (saying what is wrong) or
302 after a change, never 500; the webhook answers a body whose signature does not check out with
400 `bad_signature`, and a signed body of any shape with 200, 400 or 503, never 500. Nothing logs at
ERROR. Each test runs in a transaction that is rolled back: organisation A is as seeded afterwards.
"""

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from hypothesis import example, given
from hypothesis import strategies as st
from pytest_django.fixtures import Settings

from alerts.models import AlertChannel, AlertCondition
from billing.events import SUBSCRIPTION_EVENTS
from tests.security.fuzz import Cases, fuzz_settings, fuzz_target, json_values, no_error_logged
from tests.security.support import SITE, World, body_of, client_for, send
from widgets.models import WidgetKind, WidgetTheme

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "whsec_tickerdeck_fuzz"
STRIPE_UNAVAILABLE = frozenset({503})  # the webhook's answer when Stripe cannot be asked: it retries later

# -- the owners' forms -------------------------------------------------------------------------------
# Path (with {watchlist}, {widget}, {alert} for A's seeded rows) → the fields its form reads.
WIDGET_FIELDS = ["name", "kind", "theme", "symbols", "watchlist", "max_updates_per_second", "allowed_origins"]
ALERT_FIELDS = ["name", "symbol", "condition", "level", "cooldown_minutes", "channels"]
FORMS = {
    "/watchlists/new/": ["name"],
    "/watchlists/{watchlist}/rename/": ["name"],
    "/watchlists/{watchlist}/symbols/": ["symbols"],
    "/watchlists/{watchlist}/symbols/remove/": ["symbol"],
    "/watchlists/{watchlist}/symbols/move/": ["symbol", "position"],
    "/widgets/new/": WIDGET_FIELDS,
    "/widgets/{widget}/edit/": WIDGET_FIELDS,
    "/widgets/{widget}/active/": ["active"],
    "/alerts/new/": ALERT_FIELDS,
    "/alerts/{alert}/edit/": ALERT_FIELDS,
    "/alerts/{alert}/active/": ["active"],
    "/alerts/{alert}/email/": ["chosen"],
    "/alerts/settings/": ["webhook_url"],
}
# What a browser can post: any text but lone surrogates (which no UTF-8 encoder takes).
FORM_TEXT = st.text(st.characters(codec="utf-8"), max_size=200)
PLAUSIBLE = st.sampled_from(
    ["", " ", "0", "1", "-1", "50", "51", "1e309", "-1e-309", "NaN", "Infinity", "-0", "9" * 40, "1.00001", "\x00",
     "AAPL", "aapl, msft;TSLA", "AAPL\x00", "NOPE", "ZZZZZZZZZZZZZZZZZ", "https://www.example.com", "http://[::1]:1",
     "null", "javascript:alert(1)", SITE + "\n" + SITE, *WidgetKind.values, *WidgetTheme.values,
     *AlertCondition.values, *AlertChannel.values, "https://127.0.0.1/hook", "https://[::1]/hook"]
)  # fmt: skip
NUMBERS = st.decimals(allow_nan=True, allow_infinity=True).map(str) | st.integers().map(str)
# Built URLs use IP hosts only: a webhook address is resolved, and a random name would ask DNS.
URLS = st.builds("{}://{}:{}/{}".format, st.sampled_from(["http", "https", "ftp"]), st.ip_addresses().map(
    lambda ip: f"[{ip}]" if ip.version == 6 else str(ip)), st.integers(0, 70_000), FORM_TEXT)  # fmt: skip
VALUE = FORM_TEXT | PLAUSIBLE | NUMBERS | URLS
FIELD = st.none() | VALUE | st.lists(VALUE, min_size=2, max_size=4)  # None: the field is left out


def form_posts() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """A form's path and a post of it: each of its fields left out, once or several times, plus unknown fields."""

    def post(path: str) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
        fields = st.fixed_dictionaries(dict.fromkeys(FORMS[path], FIELD))
        extra = st.dictionaries(FORM_TEXT.filter(lambda k: k and k not in FORMS[path]), VALUE, max_size=2)
        both = st.builds(
            lambda known, more: {**more, **{k: v for k, v in known.items() if v is not None}}, fields, extra
        )
        return both.map(lambda data: (path, data))

    return st.sampled_from(sorted(FORMS)).flatmap(post)


@pytest.fixture
def owner(world: World) -> Client:
    return client_for(world.a.host, world.a.owner)


@pytest.fixture(scope="module")
def form_cases() -> Iterator[Cases]:
    with fuzz_target("form fields") as cases:
        yield cases


@fuzz_settings()
@given(post=form_posts())
@example(post=("/alerts/new/", {"name": "x", "symbol": "AAPL", "condition": "price_above", "level": "1e309",
                                "cooldown_minutes": "15", "channels": "in_app"}))  # fmt: skip
@example(post=("/widgets/new/", {"name": "x", "kind": "ticker_tape", "theme": "light", "symbols": "AAPL",
                                 "watchlist": "9" * 30, "allowed_origins": SITE}))  # fmt: skip
def test_fuzz_form_fields(world: World, owner: Client, post: tuple[str, dict[str, Any]], form_cases: Cases) -> None:
    """Any values in any owner's form: the form again with what is wrong (200/400), or a redirect, never 500."""
    path, data = post
    rows = {"watchlist": world.a.watchlist_ids[0], "widget": world.a.widget_ids[0], "alert": world.a.alert_ids[0]}
    with no_error_logged():
        response = send(owner, "POST", path.format(**rows), data)
    assert response.status_code in (200, 302, 400), (path, data, response.status_code)
    if response.status_code != 302:
        assert "<form" in body_of(response), (path, data)
    form_cases.count(f"{response.status_code}")


# -- Stripe's webhook --------------------------------------------------------------------------------
def signature_for(body: bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """Stripe's scheme: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    t = int(time.time()) if at is None else at
    return f"t={t},v1={hmac.new(secret.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


@pytest.fixture
def webhook(settings: Settings) -> Client:
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_SECRET_KEY = ""  # a checkout's subscription is then unreadable: 503, Stripe retries
    return client_for("localhost")


@pytest.fixture(scope="module")
def bad_signature_cases() -> Iterator[Cases]:
    with fuzz_target("webhook bodies, bad signatures") as cases:
        yield cases


@pytest.fixture(scope="module")
def signed_cases() -> Iterator[Cases]:
    with fuzz_target("webhook bodies, signed") as cases:
        yield cases


BODIES = st.binary(max_size=500) | json_values().map(lambda value: json.dumps(value).encode())
BAD_SIGNATURES = st.one_of(
    st.text(st.characters(codec="latin-1"), max_size=120),  # what a header can carry
    st.builds(lambda t, v1: f"t={t},v1={v1}", st.integers() | FORM_TEXT, st.text("0123456789abcdef", max_size=70)),
    st.builds(lambda body: signature_for(body, secret="whsec_someone_else"), st.binary(max_size=20)),
    st.just("stale"),  # our secret over this body, 6 minutes old
    st.just("other body"),  # our secret, now, over another body
)


@fuzz_settings()
@given(body=BODIES, header=BAD_SIGNATURES)
def test_fuzz_webhook_bodies_with_bad_signatures(
    webhook: Client, body: bytes, header: str, bad_signature_cases: Cases
) -> None:
    """Any body whose signature does not check out: 400 bad_signature, never 500."""
    if header == "stale":
        header = signature_for(body, at=int(time.time()) - 360)
    elif header == "other body":
        header = signature_for(body + b" ")
    with no_error_logged():
        response = webhook.post(
            "/billing/webhook/", data=body, content_type="application/json", headers={"Stripe-Signature": header}
        )
    assert response.status_code == 400, (body, header, response.status_code)
    assert response.json()["error"] == "bad_signature"
    bad_signature_cases.count("400 bad_signature")


EVENT_TYPES = st.sampled_from(
    sorted(SUBSCRIPTION_EVENTS | {"checkout.session.completed", "invoice.paid", "invoice.payment_failed"})
) | st.text(max_size=30)
OBJECT_KEYS = ["id", "customer", "subscription", "client_reference_id", "status", "items", "plan", "price",
               "amount_paid", "amount_due", "currency", "product", "data"]  # fmt: skip
STRIPE_OBJECTS = st.recursive(
    json_values(max_leaves=4),
    lambda inner: (
        st.dictionaries(st.sampled_from(OBJECT_KEYS) | st.text(max_size=8), inner, max_size=6)
        | st.lists(inner, max_size=3)
    ),
    max_leaves=12,
)
EVENTS = st.fixed_dictionaries(
    {"id": st.text(max_size=300), "type": EVENT_TYPES},
    optional={
        "created": json_values(max_leaves=2) | st.integers(min_value=-(2**63), max_value=2**63),
        "data": STRIPE_OBJECTS | st.fixed_dictionaries({"object": STRIPE_OBJECTS}),
        "object": st.just("event"),
    },
)


@fuzz_settings()
@given(event=EVENTS | json_values())
@example(event={"id": "evt_1", "type": "invoice.paid", "created": "yesterday"})
@example(event={"id": "evt_2", "type": "invoice.paid", "created": 10**15})
@example(event={"id": "evt_3", "type": "invoice.paid", "data": []})
@example(event={"id": "evt_4", "type": "invoice.paid", "data": {"object": {"id": "in_1", "amount_paid": "ten"}}})
@example(event={"id": "evt_" + "x" * 300, "type": "checkout.session.completed"})
@example(event={"id": "evt_6", "type": "customer.subscription.updated", "data": {"object": {"items": {"data": [1]}}}})
@example(event={"id": "evt_\x00", "type": "invoice.paid"})
@example(event={"id": "evt_8", "type": "invoice.paid", "data": {"object": {"id": "in_1", "customer": "cus_\x00"}}})
def test_fuzz_webhook_bodies_signed(webhook: Client, world: World, event: Any, signed_cases: Cases) -> None:
    """Any signed JSON (Stripe's or a leaked secret's): 200 processed, 400 not an event, 503 Stripe unreachable."""
    if isinstance(event, dict) and event.get("type") == "checkout.session.completed" and "data" not in event:
        event["data"] = {"object": {"client_reference_id": world.a.slug, "subscription": "sub_x"}}
    body = json.dumps(event).encode()
    with no_error_logged(answers=STRIPE_UNAVAILABLE):
        response = webhook.post(
            "/billing/webhook/",
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": signature_for(body)},
        )
    assert response.status_code in (200, 400, 503), (event, response.status_code)
    answer = response.json()
    assert answer.get("error", "received") in {"received", "bad_signature", "bad_event", "stripe_unavailable"}
    signed_cases.count(f"{response.status_code}")
