"""Input of the alert pages: parsed here into an AlertSpec, checked by alerts.services."""

from typing import Any

from django import forms

from .destinations import URL_MAX_LENGTH
from .models import Alert, AlertChannel, AlertCondition
from .services import COOLDOWN_MAX_SECONDS, NAME_MAX_LENGTH, AlertSpec


class AlertForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=NAME_MAX_LENGTH, widget=forms.TextInput(attrs={"placeholder": "e.g. Apple breakout"})
    )
    symbol = forms.CharField(
        label="Symbol",
        max_length=20,
        widget=forms.TextInput(attrs={"placeholder": "AAPL", "autocomplete": "off", "autocapitalize": "characters"}),
    )
    condition = forms.ChoiceField(label="When", choices=AlertCondition.choices, initial=AlertCondition.PRICE_ABOVE)
    level = forms.DecimalField(
        label="Level",
        max_digits=16,
        decimal_places=4,
        help_text="A price for “crosses above/below”; a percentage (5 or -5) for the day change.",
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )
    cooldown_minutes = forms.IntegerField(
        label="Cooldown (minutes)",
        min_value=1,
        max_value=COOLDOWN_MAX_SECONDS // 60,
        initial=15,
        help_text="After it fires, the alert stays quiet this long, so a price wobbling around the level "
        "does not fire it again and again.",
    )
    channels = forms.MultipleChoiceField(
        label="Tell",
        choices=AlertChannel.choices,
        initial=[AlertChannel.IN_APP],
        widget=forms.CheckboxSelectMultiple,
        help_text="In the app: on every open dashboard. E-mail: to the members who choose it (you, as its "
        "creator). Webhook: posted, signed, to the address on the alert settings page.",
    )

    @classmethod
    def of_alert(cls, alert: Alert) -> "AlertForm":
        return cls(
            initial={
                "name": alert.name,
                "symbol": alert.symbol,
                "condition": alert.condition,
                "level": alert.level.normalize(),
                "cooldown_minutes": alert.cooldown_minutes,
                "channels": list(alert.channels),
            },
            auto_id="edit_%s",
        )

    def clean_symbol(self) -> str:
        return str(self.cleaned_data["symbol"]).strip().upper()

    def spec(self) -> AlertSpec:
        data: dict[str, Any] = self.cleaned_data
        return AlertSpec(
            name=data["name"],
            symbol=data["symbol"],
            condition=data["condition"],
            level=data["level"],
            cooldown_seconds=data["cooldown_minutes"] * 60,
            channels=list(data["channels"]),
        )


class WebhookForm(forms.Form):
    webhook_url = forms.CharField(
        label="Webhook address",
        required=False,
        max_length=URL_MAX_LENGTH,
        help_text="Fired alerts are posted here as JSON, signed in the Tickerdeck-Signature header. "
        "Leave empty to stop posting.",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/tickerdeck"}),
    )
