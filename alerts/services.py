"""Writes of alerts and of the organisation's webhook, within the plan's `max_alerts`.

Every function runs in the organisation's schema, which the request has already set (they refuse
to run in another one), and raises ValidationError with messages for people keyed by the form field
they are about ("name", "symbol", "condition", "level", "cooldown_minutes", "channels",
"webhook_url"; the plan limit carries ALERT_LIMIT), or Alert.DoesNotExist for an id that is not an
alert of this organisation. A refused change changes nothing. After each committed change the feed
processes' alert engines are told to reload the organisation's alerts (alerts.store).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing.limits import PlanLimits, organisation_limits_locked
from core.names import name_clean
from symbols.selectors import rejection_problems, symbols_validate
from tenants.db import require_schema
from tenants.models import Organisation

from .destinations import webhook_url_clean
from .models import Alert, AlertChannel, AlertCondition, AlertSettings, webhook_secret_new
from .store import alerts_changed_mark

ALERT_LIMIT = "alert_limit"
PLAN_LIMIT_CODES = frozenset({ALERT_LIMIT})

NAME_MAX_LENGTH = 80
COOLDOWN_MIN_SECONDS = 1
COOLDOWN_MAX_SECONDS = 7 * 86_400
PRICE_MAX = Decimal("1000000000")
CHANGE_MAX = Decimal("1000")
LEVEL_STEP = Decimal("0.0001")  # Alert.level's decimal_places


@dataclass(frozen=True)
class AlertSpec:
    """What an alert watches and how it tells: one symbol, a condition and its level, cooldown, channels."""

    name: str
    symbol: str
    condition: str
    level: Decimal
    cooldown_seconds: int = 900
    channels: Sequence[str] = (AlertChannel.IN_APP,)


def alert_create(*, organisation: Organisation, spec: AlertSpec, created_by_id: int | None = None) -> Alert:
    """A new, active alert, if the plan has room for another one; its creator gets its e-mails if it sends any."""
    _require_schema(organisation)
    alert = Alert(created_by_id=created_by_id)
    _apply(alert, spec)
    if AlertChannel.EMAIL in alert.channels and created_by_id is not None:
        alert.email_user_ids = [created_by_id]
    with transaction.atomic():
        limits = organisation_limits_locked(organisation)
        count = Alert.objects.count()
        if count >= limits.max_alerts:
            raise ValidationError(_limit_message(limits, organisation, count), code=ALERT_LIMIT)
        _require_webhook_if_chosen(alert.channels)
        alert.save()
        _changed(organisation)
    return alert


def alert_update(*, organisation: Organisation, alert_id: int, spec: AlertSpec) -> Alert:
    """Change what an alert watches or how it tells; the engine evaluates the new condition within a second."""
    _require_schema(organisation)
    with transaction.atomic():
        alert = _locked(alert_id)
        _apply(alert, spec)
        _require_webhook_if_chosen(alert.channels)
        alert.save()
        _changed(organisation)
    return alert


def alert_set_active(*, organisation: Organisation, alert_id: int, active: bool) -> Alert:
    """Pause an alert (it stops firing) or turn it on again."""
    _require_schema(organisation)
    with transaction.atomic():
        alert = _locked(alert_id)
        if alert.active != active:
            alert.active = active
            alert.save(update_fields=["active", "updated"])
            _changed(organisation)
    return alert


def alert_delete(*, organisation: Organisation, alert_id: int) -> Alert:
    """Delete an alert (returned without its id); its history stays, under the name it had."""
    _require_schema(organisation)
    with transaction.atomic():
        alert = _locked(alert_id)
        alert.delete()
        _changed(organisation)
    return alert


def alert_email_choose(*, organisation: Organisation, alert_id: int, user_id: int, chosen: bool) -> Alert:
    """A member chooses (or stops) getting this alert by e-mail; any member may, for themselves only."""
    _require_schema(organisation)
    with transaction.atomic():
        alert = _locked(alert_id)
        if chosen and AlertChannel.EMAIL not in alert.channels:
            raise ValidationError(
                {"channels": f"“{alert.name}” sends no e-mails; an owner or admin can add e-mail to its channels."}
            )
        recipients = [uid for uid in alert.email_user_ids if uid != user_id] + ([user_id] if chosen else [])
        if recipients != alert.email_user_ids:
            alert.email_user_ids = recipients
            alert.save(update_fields=["email_user_ids", "updated"])
    return alert


def alert_settings_update(*, organisation: Organisation, webhook_url: str) -> AlertSettings:
    """Set (or clear) the webhook URL; the first save also creates the organisation's signing secret."""
    _require_schema(organisation)
    url = webhook_url_clean(webhook_url)
    with transaction.atomic():
        row = _settings_locked()
        row.webhook_url = url
        row.save()
    return row


def webhook_secret_rotate(*, organisation: Organisation) -> AlertSettings:
    """A new signing secret; the old one stops working at once (every later delivery is signed with the new)."""
    _require_schema(organisation)
    with transaction.atomic():
        row = _settings_locked()
        row.webhook_secret = webhook_secret_new()
        row.secret_created = timezone.now()
        row.save()
    return row


# -- checks ----------------------------------------------------------------------------------------
def _require_schema(organisation: Organisation) -> None:
    require_schema(organisation.schema_name, what="alert")


def _apply(alert: Alert, spec: AlertSpec) -> None:
    """Check every field of the spec (all problems at once) and copy it onto the alert."""
    problems: dict[str, list[str]] = {}
    try:
        alert.name = name_clean(spec.name, thing="alert", max_length=NAME_MAX_LENGTH)
    except ValidationError as exc:
        problems.update(exc.message_dict)
    accepted, rejected = symbols_validate([spec.symbol.strip().upper()] if spec.symbol.strip() else [])
    if not accepted:
        problems["symbol"] = rejection_problems(rejected) or ["Name the symbol to watch, for example AAPL."]
    if spec.condition not in AlertCondition.values:
        problems["condition"] = ["Choose what the alert watches."]
    elif (level_problem := _level_problem(spec.condition, spec.level)) is not None:
        problems["level"] = [level_problem]
    if not COOLDOWN_MIN_SECONDS <= spec.cooldown_seconds <= COOLDOWN_MAX_SECONDS:
        problems["cooldown_minutes"] = ["Choose a cooldown between 1 minute and 7 days."]
    channels = list(dict.fromkeys(spec.channels))
    if not channels or any(channel not in AlertChannel.values for channel in channels):
        problems["channels"] = ["Choose at least one way to be told: in the app, by e-mail or by webhook."]
    if problems:
        raise ValidationError(problems)
    alert.symbol = accepted[0]
    alert.condition = spec.condition
    alert.level = spec.level
    alert.cooldown_seconds = spec.cooldown_seconds
    alert.channels = [channel for channel in AlertChannel.values if channel in channels]


def _level_problem(condition: str, level: Decimal) -> str | None:
    if not level.is_finite() or not math.isfinite(float(level)):
        return "Enter a number."
    if condition in (AlertCondition.PRICE_ABOVE, AlertCondition.PRICE_BELOW):
        if not Decimal(0) < level < PRICE_MAX:
            return "Enter a price above 0, for example 195.50."
    elif not -CHANGE_MAX < level < CHANGE_MAX or level == 0:
        return "Enter a day change in percent, for example 5 or -5 (not 0)."
    if level != level.quantize(LEVEL_STEP):  # the column keeps 4 decimals: 1E-30 was stored as 0
        return "Enter at most 4 decimals."
    return None


def _require_webhook_if_chosen(channels: Sequence[str]) -> None:
    if AlertChannel.WEBHOOK in channels and not AlertSettings.objects.exclude(webhook_url="").exists():
        raise ValidationError(
            {"channels": "Set the organisation's webhook address on the alert settings page before choosing webhook."}
        )


def _limit_message(limits: PlanLimits, organisation: Organisation, count: int) -> str:
    allowed = "no alerts" if limits.max_alerts == 0 else f"{limits.max_alerts} alert{'s' * (limits.max_alerts != 1)}"
    return (
        f"Alert limit reached: the {limits.plan_name} plan allows {allowed} and {organisation.name} already has "
        f"{count}. {'Delete one, or upgrade' if count else 'Upgrade'} your plan for more."
    )


# -- rows ------------------------------------------------------------------------------------------
def _locked(alert_id: int) -> Alert:
    return Alert.objects.select_for_update().get(pk=alert_id)


def _settings_locked() -> AlertSettings:
    AlertSettings.objects.get_or_create(pk=1)
    return AlertSettings.objects.select_for_update().get(pk=1)


def _changed(organisation: Organisation) -> None:
    # Robust: the change is saved whatever happens to the notice; the engines also reload every few minutes.
    schema = organisation.schema_name
    transaction.on_commit(lambda: alerts_changed_mark(schema_name=schema), robust=True)
