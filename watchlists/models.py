"""Watchlists: an organisation's named, ordered lists of symbols (tenant schema)."""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse


class Watchlist(models.Model):
    """A named, ordered list of tickers that a dashboard or a stream can follow."""

    name = models.CharField(max_length=80)
    symbols = ArrayField(models.CharField(max_length=12), default=list, blank=True)
    # The user lives in the public schema; a plain id keeps the tenant schema free of cross-schema FKs.
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            # Names pick a watchlist on the dashboard, so two that differ only in case would be ambiguous.
            models.UniqueConstraint(
                Lower("name"),
                name="watchlist_unique_name",
                violation_error_message="There is already a watchlist with this name.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("watchlists:detail", args=[self.pk])
