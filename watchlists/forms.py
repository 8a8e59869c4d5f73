"""Input of the watchlist pages: parsed here, checked by watchlists.services."""

import re

from django import forms

from .services import NAME_MAX_LENGTH

SYMBOLS_SEPARATOR = re.compile(r"[\s,;]+")


class WatchlistNameForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=NAME_MAX_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Tech leaders", "autocomplete": "off"}),
    )


class SymbolsAddForm(forms.Form):
    symbols = forms.CharField(
        label="Tickers",
        max_length=2000,
        help_text="Separate them with commas or spaces, e.g. AAPL, MSFT. Type a ticker or company for suggestions.",
        widget=forms.TextInput(
            attrs={"placeholder": "AAPL, MSFT", "autocomplete": "off", "autocapitalize": "characters"}
        ),
    )

    def clean_symbols(self) -> list[str]:
        """Upper-cased tickers, each once, in the order typed."""
        return list(dict.fromkeys(s.upper() for s in SYMBOLS_SEPARATOR.split(self.cleaned_data["symbols"]) if s))


class SymbolForm(forms.Form):
    """One symbol of the watchlist (the remove buttons)."""

    symbol = forms.CharField(max_length=20)

    def clean_symbol(self) -> str:
        return str(self.cleaned_data["symbol"]).upper()


class SymbolMoveForm(SymbolForm):
    """Move a symbol to a 0-based position (the up and down buttons)."""

    position = forms.IntegerField(min_value=0, max_value=100_000)
