"""Webhook parts on their own: the signature (SPEC's header), where webhooks may go, when attempts are due."""

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.deliveries import retry_due
from alerts.destinations import DestinationError, address_public, addresses_check
from alerts.signing import SignatureError, signature_header, signature_verify

SECRET = "whsec_test-secret"
BODY = b'{"id":"evt_1","type":"alert.fired"}'


def test_the_signature_is_the_hmac_of_the_timestamp_and_the_raw_body() -> None:
    header = signature_header(secret=SECRET, body=BODY, timestamp=1_700_000_000)

    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_a_receiver_accepts_a_fresh_signature_and_refuses_anything_else() -> None:
    now = int(time.time())
    assert signature_verify(header=signature_header(secret=SECRET, body=BODY), body=BODY, secret=SECRET) == now

    refused = {
        "missing": (None, BODY, SECRET),
        "malformed": ("v1=abc", BODY, SECRET),
        "other body": (signature_header(secret=SECRET, body=BODY), BODY + b" ", SECRET),
        "other secret": (signature_header(secret="whsec_other", body=BODY), BODY, SECRET),
        "old": (signature_header(secret=SECRET, body=BODY, timestamp=now - 301), BODY, SECRET),
    }
    for why, (header, body, secret) in refused.items():
        with pytest.raises(SignatureError):
            signature_verify(header=header, body=body, secret=secret)
        assert why


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1::1", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:127.0.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 (an address to check, not one to bind)
        ("224.0.0.1", False),
        ("100.64.0.1", False),
    ],
)
def test_only_public_unicast_addresses_take_webhooks(address: str, public: bool) -> None:
    assert address_public(address) is public


def test_one_private_address_among_a_name_s_addresses_refuses_it(settings: Any) -> None:
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    settings.DEBUG = False
    addresses_check("example.com", ["93.184.216.34"])
    with pytest.raises(DestinationError, match=r"10\.0\.0\.1"):
        addresses_check("rebound.example", ["93.184.216.34", "10.0.0.1"])
    settings.DEBUG = True  # development: local receivers are fine
    addresses_check("localhost", ["127.0.0.1"])


def test_attempts_back_off_doubling_until_24_hours_after_the_alert_fired(settings: Any) -> None:
    settings.ALERT_WEBHOOK_BACKOFF_SECONDS = 30
    settings.ALERT_WEBHOOK_BACKOFF_MAX_SECONDS = 3600
    settings.ALERT_WEBHOOK_RETRY_HOURS = 24
    fired = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    waits = [retry_due(fired_at=fired, attempt=n, now=fired) for n in (1, 2, 3, 8, 20)]

    assert [w - fired for w in waits if w] == [timedelta(seconds=s) for s in (30, 60, 120, 3600, 3600)]
    late = fired + timedelta(hours=23, minutes=59)
    assert retry_due(fired_at=fired, attempt=30, now=late) == fired + timedelta(hours=24)  # the last one
    assert retry_due(fired_at=fired, attempt=31, now=fired + timedelta(hours=24)) is None
