"""The symbol directory: real listed stocks that quotes can be streamed for (public schema)."""

from django.contrib.postgres.fields import ArrayField
from django.db import models


class Symbol(models.Model):
    """A listed stock: ticker (upper case), company name, exchange, index membership."""

    symbol = models.CharField(max_length=12, unique=True)
    name = models.CharField(max_length=200)
    exchange = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=60, blank=True)
    indices = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    isin = models.CharField(max_length=12, blank=True)

    class Meta:
        ordering = ("symbol",)

    def __str__(self) -> str:
        return f"{self.symbol} ({self.name})"
