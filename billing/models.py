"""Plans: the limits staff sell, edited in the admin (public schema)."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

# The fields that limit what an organisation on a plan may do, in the order people read them.
LIMIT_FIELDS = (
    "max_symbols_per_stream",
    "max_streams",
    "max_watchlists",
    "max_widgets",
    "max_widget_viewers",
    "max_alerts",
    "realtime",
    "delay_minutes",
)


class Plan(models.Model):
    """A price and the limits that every part of the platform enforces."""

    name = models.CharField(max_length=60)
    slug = models.SlugField(max_length=40, unique=True)
    price_monthly = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    stripe_price_id = models.CharField(max_length=120, blank=True, db_index=True)
    stripe_product_id = models.CharField(max_length=120, blank=True, help_text="Set by sync_stripe_plans.")
    max_symbols_per_stream = models.PositiveIntegerField(default=5)
    max_streams = models.PositiveIntegerField(default=2, help_text="Concurrent signed-in websocket connections.")
    max_watchlists = models.PositiveIntegerField(default=1)
    max_widgets = models.PositiveIntegerField(default=0)
    max_widget_viewers = models.PositiveIntegerField(default=0, help_text="Concurrent widget connections.")
    # blank: an admin form posted without this field (one rendered before it existed) keeps the stored
    # value instead of failing; clean() still refuses a field that was sent empty.
    max_alerts = models.PositiveIntegerField(default=3, blank=True, help_text="Price alerts an organisation may keep.")
    realtime = models.BooleanField(default=False)
    delay_minutes = models.PositiveIntegerField(default=15, help_text="Used when the plan is not realtime.")
    is_public = models.BooleanField(default=True, help_text="Listed on the pricing page.")
    is_default = models.BooleanField(default=False, help_text="Given to new organisations.")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("price_monthly", "name")
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="plan_one_default"),
            models.UniqueConstraint(
                fields=["stripe_price_id"], condition=~Q(stripe_price_id=""), name="plan_unique_stripe_price"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.max_alerts is None:
            raise ValidationError({"max_alerts": "Give the number of alerts this plan allows (0 for none)."})

    @property
    def data_label(self) -> str:
        """How fresh this plan's quotes are, for people."""
        return data_label(realtime=self.realtime, delay_minutes=self.delay_minutes)


def data_label(*, realtime: bool, delay_minutes: int) -> str:
    return "Realtime" if realtime else f"{delay_minutes} min delayed"


class BillingAccount(models.Model):
    """What billing knows of an organisation's Stripe subscription beyond its plan and standing."""

    organisation = models.OneToOneField("tenants.Organisation", on_delete=models.CASCADE, related_name="billing")
    # Stripe's time of the newest event whose subscription state was applied: an older event that
    # arrives later (Stripe does not promise order) changes nothing.
    subscription_event_at = models.DateTimeField(null=True, blank=True)
    stripe_status = models.CharField(max_length=30, blank=True, help_text="The subscription's status at Stripe.")
    grace_expiry_sent = models.BooleanField(default=False, help_text="Open streams were told the grace ended.")

    def __str__(self) -> str:
        return f"Billing of {self.organisation_id}"


class StripeEvent(models.Model):
    """A Stripe event, stored in the same transaction as its effect: each id is processed once."""

    id = models.CharField(max_length=255, primary_key=True)
    type = models.CharField(max_length=100)
    created_at_stripe = models.DateTimeField()
    received = models.DateTimeField(auto_now_add=True)
    organisation = models.ForeignKey(
        "tenants.Organisation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ("-received",)

    def __str__(self) -> str:
        return f"{self.type} {self.id}: {self.outcome}"


class BillingHistoryKind(models.TextChoices):
    CHECKOUT = "checkout", "Checkout"
    PLAN = "plan", "Plan changed"
    STANDING = "standing", "Subscription status"
    PAYMENT = "payment", "Payment"
    PAYMENT_FAILED = "payment_failed", "Payment failed"


class BillingHistory(models.Model):
    """One line of an organisation's billing history, as its billing page shows it."""

    organisation = models.ForeignKey("tenants.Organisation", on_delete=models.CASCADE, related_name="billing_history")
    created = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=20, choices=BillingHistoryKind.choices)
    description = models.CharField(max_length=300)
    stripe_event_id = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ("-created", "-id")
        verbose_name_plural = "billing history"

    def __str__(self) -> str:
        return self.description
