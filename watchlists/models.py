"""Watchlists: an organisation's named, ordered lists of symbols (tenant schema)."""

from django.contrib.postgres.fields import ArrayField
from django.db import models


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

    def __str__(self) -> str:
        return self.name
