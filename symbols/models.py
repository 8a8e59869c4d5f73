"""The symbol directory: real listed stocks that quotes can be streamed for (public schema)."""

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper


class Symbol(models.Model):
    """A listed stock: ticker (upper case), company name, primary listing, index membership."""

    symbol = models.CharField(max_length=12, unique=True)
    name = models.CharField(max_length=200)
    # The company's primary (home-market) listing, in Google Finance's exchange codes: NASDAQ and
    # AAPL for AAPL, LON and HSBA for HSBA.L; blank when the source names no exchange for it.
    exchange = models.CharField(max_length=20, blank=True)
    exchange_ticker = models.CharField(max_length=12, blank=True)
    country = models.CharField(max_length=60, blank=True)
    indices = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    isin = models.CharField(max_length=12, blank=True)

    class Meta:
        # The table the streaming app created before the directory became an app of its own: the
        # move changed only Django's state (symbols 0001, streaming 0003), never a row or an index.
        db_table = "streaming_symbol"
        ordering = ("symbol",)
        constraints = [
            # Tickers are compared upper-cased everywhere; the search's ticker-prefix step relies on it
            # to use the plain (varchar_pattern_ops) index Django gives the unique `symbol` column.
            models.CheckConstraint(condition=Q(symbol=Upper("symbol")), name="symbol_upper_case"),
        ]
        indexes = [
            # Company-name prefix search (symbols.selectors.symbol_search): UPPER(name) LIKE 'APP%'.
            models.Index(OpClass(Upper("name"), name="text_pattern_ops"), name="symbol_name_upper_prefix"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} ({self.name})"
