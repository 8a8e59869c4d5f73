"""Widgets: live quotes an organisation embeds on its own web sites (tenant schema)."""

import secrets

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse

PUBLIC_ID_PREFIX = "w_"
PUBLIC_ID_PATTERN = r"w_[A-Za-z0-9_-]{16}"


def public_id_new() -> str:
    """A random, URL-safe id that names the widget in its snippet (96 bits: not guessable)."""
    return PUBLIC_ID_PREFIX + secrets.token_urlsafe(12)


class WidgetKind(models.TextChoices):
    TICKER_TAPE = "ticker_tape", "Ticker tape"
    QUOTE_TABLE = "quote_table", "Quote table"


class WidgetTheme(models.TextChoices):
    LIGHT = "light", "Light"
    DARK = "dark", "Dark"


class Widget(models.Model):
    """One embeddable view of live quotes: its symbols (or a watchlist's) for viewers on allowed sites."""

    public_id = models.CharField(max_length=24, unique=True, default=public_id_new, editable=False)
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=20, choices=WidgetKind.choices, default=WidgetKind.QUOTE_TABLE)
    theme = models.CharField(max_length=10, choices=WidgetTheme.choices, default=WidgetTheme.LIGHT)
    symbols = ArrayField(models.CharField(max_length=12), default=list, blank=True)
    # Follows the watchlist's edits; when the watchlist is deleted the widget has nothing to show.
    watchlist = models.ForeignKey(
        "watchlists.Watchlist", null=True, blank=True, on_delete=models.SET_NULL, related_name="widgets"
    )
    allowed_origins = ArrayField(models.CharField(max_length=255), default=list)
    # How often each symbol may update for a viewer (1–50 a second); empty: as often as quotes come.
    max_updates_per_second = models.PositiveSmallIntegerField(null=True, blank=True)
    active = models.BooleanField(default=True)
    # The user lives in the public schema; a plain id keeps the tenant schema free of cross-schema FKs.
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="widget_unique_name",
                violation_error_message="There is already a widget with this name.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("widgets:detail", args=[self.pk])
