"""Writes of widgets, within the organisation's plan; open viewers hear of each change within 2 seconds.

Every function runs in the organisation's schema, which the request has already set (they refuse
to run in another one), and raises ValidationError with messages for people keyed by form field
("name", "kind", "theme", "symbols", "watchlist", "allowed_origins"; plan limits carry the codes in
PLAN_LIMIT_CODES), or Widget.DoesNotExist for an id that is not a widget of this organisation. A
refused change changes nothing. Creations lock the organisation's row, so two at once cannot slip
past `max_widgets` together.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower

from billing.limits import PlanLimits, organisation_limits
from core.names import name_clean, save_unique_name
from streaming.protocol import THROTTLE_RANGE
from streaming.services import widget_notify_changed
from symbols.selectors import rejection_problems, symbols_validate
from tenants.db import require_schema
from tenants.models import Organisation
from watchlists.models import Watchlist

from .models import Widget, WidgetKind, WidgetTheme
from .origins import origins_normalise

WIDGET_LIMIT = "widget_limit"
SYMBOL_LIMIT = "symbol_limit"
PLAN_LIMIT_CODES = frozenset({WIDGET_LIMIT, SYMBOL_LIMIT})

NAME_MAX_LENGTH = 80
NAME_CONSTRAINT = "widget_unique_name"


@dataclass(frozen=True)
class WidgetSpec:
    """What a widget shows and where: symbols or a watchlist (exactly one), and its allowed origins."""

    name: str
    allowed_origins: Sequence[str]
    symbols: Sequence[str] = ()
    watchlist_id: int | None = None
    kind: str = WidgetKind.QUOTE_TABLE
    theme: str = WidgetTheme.LIGHT
    max_updates_per_second: int | None = None


def widget_create(*, organisation: Organisation, spec: WidgetSpec, created_by_id: int | None = None) -> Widget:
    """A new, active widget, if the plan has room for another one."""
    require_schema(organisation.schema_name, what="widget")
    with transaction.atomic():
        limits = _limits_locked(organisation)
        count = Widget.objects.count()
        if count >= limits.max_widgets:
            raise ValidationError(_widget_limit_message(limits, organisation, count), code=WIDGET_LIMIT)
        widget = Widget(created_by_id=created_by_id)
        _apply(widget, spec, limits)
        _save(widget)
        widget_notify_changed(schema_name=organisation.schema_name, widget_id=widget.pk)
    return widget


def widget_update(*, organisation: Organisation, widget_id: int, spec: WidgetSpec) -> Widget:
    """Change what a widget shows, how, or where; open viewers follow (a removed origin closes its viewers)."""
    require_schema(organisation.schema_name, what="widget")
    with transaction.atomic():
        widget = _locked(widget_id)
        _apply(widget, spec, organisation_limits(organisation))
        _save(widget)
        widget_notify_changed(schema_name=organisation.schema_name, widget_id=widget.pk)
    return widget


def widget_set_active(*, organisation: Organisation, widget_id: int, active: bool) -> Widget:
    """Revoke (close every open viewer, refuse new ones) or restore a widget."""
    require_schema(organisation.schema_name, what="widget")
    with transaction.atomic():
        widget = _locked(widget_id)
        if widget.active != active:
            widget.active = active
            widget.save(update_fields=["active", "updated"])
            widget_notify_changed(schema_name=organisation.schema_name, widget_id=widget.pk)
    return widget


def widget_delete(*, organisation: Organisation, widget_id: int) -> Widget:
    """Delete a widget (returned without its id); its open viewers are closed."""
    require_schema(organisation.schema_name, what="widget")
    with transaction.atomic():
        widget = _locked(widget_id)
        widget.delete()
        widget_notify_changed(schema_name=organisation.schema_name, widget_id=widget_id)
    return widget


# -- checks ----------------------------------------------------------------------------------------
def _apply(widget: Widget, spec: WidgetSpec, limits: PlanLimits) -> None:
    """Check every field of the spec (reporting all problems at once), then set them on the widget."""
    errors: dict[str, list[str]] = {}
    try:
        widget.name = name_clean(spec.name, thing="widget", max_length=NAME_MAX_LENGTH)
        _require_name_free(widget.name, exclude_id=widget.pk)
    except ValidationError as exc:
        exc.update_error_dict(errors)  # type: ignore[arg-type]
    if spec.kind not in WidgetKind.values:
        errors["kind"] = [f"Choose a kind: {', '.join(WidgetKind.labels).lower()}."]
    if spec.theme not in WidgetTheme.values:
        errors["theme"] = [f"Choose a theme: {', '.join(WidgetTheme.labels).lower()}."]
    try:
        widget.allowed_origins = origins_normalise(list(spec.allowed_origins))
    except ValidationError as exc:
        errors["allowed_origins"] = exc.messages
    try:
        widget.symbols, widget.watchlist = _source(spec, limits)
    except ValidationError as exc:
        exc.update_error_dict(errors)  # type: ignore[arg-type]
    pace = spec.max_updates_per_second
    low, high = THROTTLE_RANGE
    if pace is not None and not low <= pace <= high:
        errors["max_updates_per_second"] = [f"Choose from {low} to {high} updates a second, or leave it empty."]
    if errors:
        raise ValidationError(errors)
    widget.kind, widget.theme, widget.max_updates_per_second = spec.kind, spec.theme, pace


def _source(spec: WidgetSpec, limits: PlanLimits) -> tuple[list[str], Watchlist | None]:
    """The widget's own symbols, or the watchlist it follows: exactly one of them."""
    if spec.watchlist_id is not None:
        if spec.symbols:
            raise ValidationError({"symbols": "Give either symbols or a watchlist, not both."})
        watchlist = Watchlist.objects.filter(pk=spec.watchlist_id).first()
        if watchlist is None:
            raise ValidationError({"watchlist": "That watchlist does not exist (any more); choose another."})
        return [], watchlist
    accepted, rejected = symbols_validate(spec.symbols)
    problems = rejection_problems(rejected)
    if not problems and not accepted:
        problems.append("Name at least one symbol to show, for example AAPL, or choose a watchlist.")
    if problems:
        raise ValidationError({"symbols": problems})
    if len(accepted) > limits.max_symbols:
        raise ValidationError(
            {
                "symbols": ValidationError(
                    f"Symbol limit reached: the {limits.plan_name} plan allows {limits.max_symbols} symbols per "
                    f"stream and this widget names {len(accepted)}. Show fewer, or upgrade your plan for more.",
                    code=SYMBOL_LIMIT,
                )
            }
        )
    return accepted, None


def _require_name_free(name: str, *, exclude_id: int | None) -> None:
    taken = Widget.objects.annotate(lower_name=Lower("name")).filter(lower_name=name.lower())
    if exclude_id is not None:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        raise ValidationError({"name": _name_taken(name)})


def _name_taken(name: str) -> str:
    return f"There is already a widget called “{name}”; choose another name."


def _widget_limit_message(limits: PlanLimits, organisation: Organisation, count: int) -> str:
    allowed = (
        "no widgets" if limits.max_widgets == 0 else f"{limits.max_widgets} widget{'s' * (limits.max_widgets != 1)}"
    )
    return (
        f"Widget limit reached: the {limits.plan_name} plan allows {allowed} and {organisation.name} already has "
        f"{count}. {'Delete one, or upgrade' if count else 'Upgrade'} your plan for more."
    )


# -- rows ------------------------------------------------------------------------------------------
def _limits_locked(organisation: Organisation) -> PlanLimits:
    locked = Organisation.objects.select_for_update(of=("self",)).select_related("plan").get(pk=organisation.pk)
    return organisation_limits(locked)


def _locked(widget_id: int) -> Widget:
    return Widget.objects.select_for_update(of=("self",)).get(pk=widget_id)


def _save(widget: Widget) -> None:
    save_unique_name(widget, constraint=NAME_CONSTRAINT, taken=_name_taken(widget.name))
