"""Price alerts, what they fired and where the news went (tenant schema)."""

import secrets
from datetime import UTC, datetime
from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def webhook_secret_new() -> str:
    """A random signing secret (256 bits), in the form Stripe's own webhook secrets have."""
    return WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)


def event_uid_new() -> str:
    """The id a webhook receiver sees for an event (the same on every retry, so it can drop repeats)."""
    return "evt_" + secrets.token_urlsafe(16)


class AlertCondition(models.TextChoices):
    PRICE_ABOVE = "price_above", "Price crosses above"
    PRICE_BELOW = "price_below", "Price crosses below"
    CHANGE_ABOVE = "change_pct_above", "Day change % rises to"
    CHANGE_BELOW = "change_pct_below", "Day change % falls to"


class AlertChannel(models.TextChoices):
    IN_APP = "in_app", "In the app"
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


def level_text(level: Decimal) -> str:
    """A level as people typed it, with at least two decimals: 105 → "105.00", 0.1234 → "0.1234"."""
    text = format(level.normalize(), "f")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def condition_text(condition: str, level: Decimal) -> str:
    """What happened when an alert of this condition fired: "crossed above 105.00", "day change fell to -5.00%"."""
    if condition == AlertCondition.PRICE_ABOVE:
        return f"crossed above {level_text(level)}"
    if condition == AlertCondition.PRICE_BELOW:
        return f"crossed below {level_text(level)}"
    sign = "+" if level > 0 else ""
    verb = "rose" if condition == AlertCondition.CHANGE_ABOVE else "fell"
    return f"day change {verb} to {sign}{level_text(level)}%"


class Alert(models.Model):
    """A condition on one symbol; when it is met the alert fires, then stays quiet for its cooldown."""

    name = models.CharField(max_length=80)
    symbol = models.CharField(max_length=12)
    condition = models.CharField(max_length=20, choices=AlertCondition.choices)
    # A price for the price conditions, a percentage for the change conditions.
    level = models.DecimalField(max_digits=16, decimal_places=4)
    cooldown_seconds = models.PositiveIntegerField(default=900)
    channels = ArrayField(models.CharField(max_length=10, choices=AlertChannel.choices), default=list)
    # Members (user ids; users live in the public schema) who chose to get this alert by e-mail.
    email_user_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    active = models.BooleanField(default=True)
    # The source time (epoch ms) of the quote that last fired it: the once-per-cooldown guard, read and
    # written under this row's lock, so two feed leaders never both fire the same crossing.
    last_fired_ts = models.BigIntegerField(null=True, blank=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("symbol", "name", "id")
        constraints = [
            models.CheckConstraint(condition=Q(cooldown_seconds__gte=1), name="alert_cooldown_positive"),
            models.CheckConstraint(condition=Q(condition__in=AlertCondition.values), name="alert_condition_known"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("alerts:detail", args=[self.pk])

    @property
    def is_price(self) -> bool:
        return self.condition in (AlertCondition.PRICE_ABOVE, AlertCondition.PRICE_BELOW)

    @property
    def cooldown_minutes(self) -> int:
        return max(1, round(self.cooldown_seconds / 60))

    @property
    def description(self) -> str:
        """The condition, as the alert's notices say it once it is met."""
        return condition_text(self.condition, self.level)

    @property
    def channel_labels(self) -> list[str]:
        return [str(AlertChannel(channel).label) for channel in self.channels]


class AlertSettings(models.Model):
    """The organisation's webhook: where fired alerts are posted, and the secret that signs them (one row)."""

    webhook_url = models.URLField(max_length=2000, blank=True)
    webhook_secret = models.CharField(max_length=80, default=webhook_secret_new)
    secret_created = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "alert settings"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="alert_settings_single_row")]

    def __str__(self) -> str:
        return self.webhook_url or "no webhook"

    @property
    def secret_hint(self) -> str:
        """Enough of the secret to tell which one a receiver holds, not enough to sign with it."""
        return self.webhook_secret[: len(WEBHOOK_SECRET_PREFIX) + 4] + "…"


class AlertEvent(models.Model):
    """One firing of an alert, written once; what it said is kept even if the alert is edited or deleted."""

    uid = models.CharField(max_length=40, unique=True, default=event_uid_new, editable=False)
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    alert_name = models.CharField(max_length=80)
    symbol = models.CharField(max_length=12)
    condition = models.CharField(max_length=20, choices=AlertCondition.choices)
    level = models.DecimalField(max_digits=16, decimal_places=4)
    description = models.CharField(max_length=120)
    price = models.FloatField()
    change_pct = models.FloatField()
    quote_ts = models.BigIntegerField(help_text="The quote's time at the source, epoch ms.")
    delay_minutes = models.PositiveIntegerField(default=0)
    channels = ArrayField(models.CharField(max_length=10, choices=AlertChannel.choices), default=list)
    fired_at = models.DateTimeField(auto_now_add=True)
    emails_sent = models.PositiveIntegerField(default=0)
    email_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ("-fired_at", "-id")
        indexes = [models.Index(fields=["-fired_at"], name="alert_event_fired_at")]

    def __str__(self) -> str:
        return f"{self.alert_name}: {self.symbol} {self.description}"

    @property
    def quote_at(self) -> datetime:
        """The quote's time at the source (a delayed plan's is `delay_minutes` before it fired)."""
        return datetime.fromtimestamp(self.quote_ts / 1000, tz=UTC)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One attempt to post an event to the webhook; a failed attempt schedules the next one (backoff, 24 h)."""

    event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="deliveries")
    attempt = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    next_attempt_at = models.DateTimeField(help_text="When this attempt is due.")
    # A sender claims a due attempt until then: two feed processes never post the same attempt.
    claimed_until = models.DateTimeField(null=True, blank=True)
    url = models.CharField(max_length=2000, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ("event", "attempt")
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "attempt"], name="webhook_delivery_unique_attempt"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="webhook_delivery_due", condition=Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"attempt {self.attempt} of {self.event_id}: {self.status}"
