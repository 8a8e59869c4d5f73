"""Input of the widget pages: parsed here into a WidgetSpec, checked by widgets.services."""

import re
from typing import Any, cast

from django import forms

from watchlists.forms import SYMBOLS_SEPARATOR
from watchlists.models import Watchlist

from .models import Widget, WidgetKind, WidgetTheme
from .origins import MAX_ORIGINS
from .services import NAME_MAX_LENGTH, WidgetSpec

ORIGINS_SEPARATOR = re.compile(r"[\s,]+")


class WidgetForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=NAME_MAX_LENGTH, widget=forms.TextInput(attrs={"placeholder": "e.g. Homepage tape"})
    )
    kind = forms.ChoiceField(label="Kind", choices=WidgetKind.choices, initial=WidgetKind.QUOTE_TABLE)
    theme = forms.ChoiceField(label="Theme", choices=WidgetTheme.choices, initial=WidgetTheme.LIGHT)
    symbols = forms.CharField(
        label="Symbols",
        required=False,
        max_length=2000,
        help_text="Separate them with commas or spaces, e.g. AAPL, MSFT. Leave empty to follow a watchlist.",
        widget=forms.TextInput(attrs={"placeholder": "AAPL, MSFT", "autocomplete": "off"}),
    )
    watchlist = forms.TypedChoiceField(
        label="Or follow a watchlist",
        required=False,
        coerce=int,
        empty_value=None,
        help_text="The widget then shows the watchlist's symbols, and follows its edits.",
    )
    max_updates_per_second = forms.IntegerField(
        label="Updates per symbol per second",
        required=False,
        min_value=1,
        max_value=50,
        help_text="Optional: at most this many price changes a second per symbol (the latest price each time).",
    )
    allowed_origins = forms.CharField(
        label="Allowed sites",
        max_length=MAX_ORIGINS * 260,
        help_text="One per line, exactly as the site's address starts: https://www.example.com or "
        "https://example.com:8443. Only pages on these sites can show the widget.",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "https://www.example.com", "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "— none: show the symbols above —")]
        choices += [(str(pk), name) for pk, name in Watchlist.objects.order_by("name").values_list("pk", "name")]
        cast(forms.TypedChoiceField, self.fields["watchlist"]).choices = choices

    @classmethod
    def of_widget(cls, widget: Widget) -> "WidgetForm":
        return cls(
            initial={
                "name": widget.name,
                "kind": widget.kind,
                "theme": widget.theme,
                "symbols": ", ".join(widget.symbols),
                "watchlist": widget.watchlist_id or "",
                "allowed_origins": "\n".join(widget.allowed_origins),
                "max_updates_per_second": widget.max_updates_per_second,
            },
            auto_id="edit_%s",
        )

    def spec(self) -> WidgetSpec:
        data = self.cleaned_data
        return WidgetSpec(
            name=data["name"],
            kind=data["kind"],
            theme=data["theme"],
            symbols=[s.upper() for s in SYMBOLS_SEPARATOR.split(data["symbols"]) if s],
            watchlist_id=data["watchlist"],
            allowed_origins=[o for o in ORIGINS_SEPARATOR.split(data["allowed_origins"]) if o],
            max_updates_per_second=data["max_updates_per_second"],
        )
