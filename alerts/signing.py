"""Webhook signatures (SPEC): `Tickerdeck-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.

The same scheme as Stripe's: the timestamp is signed with the body, so a receiver that refuses old
timestamps also refuses a captured request replayed later. `signature_verify` is what a receiver
does (the tests' receiver uses it, and the README shows it).
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Tickerdeck-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """A signature header that is missing, malformed, too old or wrong."""


def signature_compute(*, secret: str, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of "<timestamp>.<body>" with the organisation's secret."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The value of the Tickerdeck-Signature header for this body, signed now (or at `timestamp`)."""
    at = int(time.time()) if timestamp is None else timestamp
    return f"t={at},v1={signature_compute(secret=secret, body=body, timestamp=at)}"


def signature_verify(
    *, header: str | None, body: bytes, secret: str, tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
) -> int:
    """Check a received signature (constant time); the signed timestamp, or SignatureError saying why not."""
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError) as exc:
        raise SignatureError("no timestamp (t=) in the signature header") from exc
    if abs(time.time() - timestamp) > tolerance_seconds:
        raise SignatureError("the signed timestamp is too old (or in the future)")
    expected = signature_compute(secret=secret, body=body, timestamp=timestamp)
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", [])):
        raise SignatureError("no v1 signature matches the body")
    return timestamp
