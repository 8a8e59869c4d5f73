"""Alerts' settings, read from django.conf.settings each time they are used (never at import)."""

from datetime import timedelta

from django.conf import settings


class AlertSettingsAccess:
    """Typed, lazy accessors with defaults; tests override the Django settings they name."""

    @property
    def webhook_allow_private(self) -> bool:
        """Webhooks to loopback and private addresses: refused unless DEBUG or ALERT_WEBHOOK_ALLOW_PRIVATE."""
        return bool(getattr(settings, "ALERT_WEBHOOK_ALLOW_PRIVATE", False) or settings.DEBUG)

    @property
    def webhook_backoff(self) -> timedelta:
        """How long after the first failed attempt the second one goes (then twice as long each time)."""
        return timedelta(seconds=float(getattr(settings, "ALERT_WEBHOOK_BACKOFF_SECONDS", 30.0)))

    @property
    def webhook_backoff_max(self) -> timedelta:
        return timedelta(seconds=float(getattr(settings, "ALERT_WEBHOOK_BACKOFF_MAX_SECONDS", 3600.0)))

    @property
    def webhook_retry_for(self) -> timedelta:
        """How long after an alert fired its webhook is still tried (SPEC: 24 hours)."""
        return timedelta(hours=float(getattr(settings, "ALERT_WEBHOOK_RETRY_HOURS", 24.0)))

    @property
    def webhook_timeout_seconds(self) -> float:
        return float(getattr(settings, "ALERT_WEBHOOK_TIMEOUT_SECONDS", 10.0))

    @property
    def redis_prefix(self) -> str:
        """Alerts' keys sit next to the streaming state's (a test run's namespace included)."""
        return f"{settings.STREAM_REDIS_PREFIX}alerts:"


alert_settings = AlertSettingsAccess()
