"""Billing's settings, read from django.conf.settings each time they are used (never at import)."""

from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings

# SPEC: a webhook whose signed timestamp is older than this is refused.
WEBHOOK_TOLERANCE_SECONDS = 300


class BillingSettings:
    """Typed, lazy accessors with defaults; tests override the Django settings they name."""

    @property
    def stripe_secret_key(self) -> str:
        return str(getattr(settings, "STRIPE_SECRET_KEY", "") or "")

    @property
    def stripe_webhook_secret(self) -> str:
        return str(getattr(settings, "STRIPE_WEBHOOK_SECRET", "") or "")

    @property
    def stripe_api_base(self) -> str:
        """Where Stripe's API is reached ('' for Stripe itself); a local fake in tests."""
        return str(getattr(settings, "STRIPE_API_BASE", "") or "")

    @property
    def stripe_timeout_seconds(self) -> float:
        """How long one request to Stripe may take (stripe-python's own default is 80 s, retried twice:
        minutes of a Checkout request, holding the organisation's row lock, on a Stripe that hangs)."""
        return float(getattr(settings, "STRIPE_TIMEOUT_SECONDS", 10))

    @property
    def currency(self) -> str:
        return str(getattr(settings, "BILLING_CURRENCY", "usd")).lower()

    @property
    def payment_grace(self) -> timedelta:
        """How long a past-due organisation keeps streaming before 4402 (SPEC default: 7 days)."""
        return timedelta(days=float(getattr(settings, "BILLING_PAYMENT_GRACE_DAYS", 7)))

    @property
    def redirect_origins(self) -> list[str]:
        """Where our forms' redirects lead (Checkout, the Portal): CSP form-action must name them."""
        origins = ["https://checkout.stripe.com", "https://billing.stripe.com"]
        parts = urlsplit(self.stripe_api_base)
        if parts.scheme and parts.netloc:  # a local fake answers sessions whose pages it serves itself
            origins.append(f"{parts.scheme}://{parts.netloc}")
        return origins

    @property
    def is_configured(self) -> bool:
        """Checkout, the Portal and plan sync need the secret key; without it billing says so."""
        return bool(self.stripe_secret_key)


billing_settings = BillingSettings()
