"""The connect step of a widget viewer, and the re-read its connection makes when the widget changes.

As streaming.access, each function sets the schema it queries itself (the thread pool that runs them
does not carry schema state). Order of SPEC: token (signature, expiry, binding), the widget's active
flag and allowed origins (4403), the organisation's standing (4402); the viewer quota comes after,
in the consumer (4429).
"""

from dataclasses import dataclass
from typing import Any

from django.db import connection

from billing.limits import LIMITS_SQL_COLUMNS, PLAN_TABLE, PlanLimits
from streaming.access import OrganisationRef, standing_refusal_of
from streaming.params import WidgetParams
from streaming.protocol import CloseCode, Refusal
from symbols.selectors import Rejection, symbols_validate
from tenants.db import activate_public_schema, activate_schema
from tenants.models import Organisation

from .models import Widget
from .tokens import widget_token_problem

WIDGET_GONE = Refusal(CloseCode.FORBIDDEN, "forbidden", "This widget no longer exists.")
WIDGET_REVOKED = Refusal(CloseCode.FORBIDDEN, "forbidden", "This widget has been turned off by its organisation.")
ORIGIN_NOT_ALLOWED = Refusal(CloseCode.FORBIDDEN, "forbidden", "This widget is not allowed on this web site.")
NO_SYMBOLS = Refusal(CloseCode.BAD_REQUEST, "bad_request", "This widget has no symbols to show.")


@dataclass(frozen=True)
class WidgetView:
    """What a viewer of one widget is shown: its look and its symbols (already capped by the plan)."""

    widget_id: int
    public_id: str
    name: str
    kind: str
    theme: str
    watchlist_id: int | None
    symbols: list[str]
    rejected: list[Rejection]
    max_per_second: int | None = None

    def config(self) -> dict[str, Any]:
        """The `widget` object of the snapshot and of `widget` messages."""
        return {"id": self.public_id, "name": self.name, "kind": self.kind, "theme": self.theme}


@dataclass(frozen=True)
class WidgetAccess:
    """A viewer let in (before the quota): the widget it shows and the organisation's limits."""

    view: WidgetView
    limits: PlanLimits

    @property
    def symbols(self) -> list[str]:
        return self.view.symbols

    @property
    def rejected(self) -> list[Rejection]:
        return self.view.rejected


_STANDING_SQL = f"""
    SELECT o.subscription_status, o.payment_grace_until, {LIMITS_SQL_COLUMNS}
    FROM {Organisation._meta.db_table} o JOIN {PLAN_TABLE} p ON p.id = o.plan_id
    WHERE o.id = %s
"""  # noqa: S608 (table and column names from model metadata; values are parameters)


def widget_access(
    *, organisation: OrganisationRef, params: WidgetParams, origin: str, own_origin: str | None
) -> WidgetAccess | Refusal:
    """Everything a viewer's connect step checks before the quota, in one thread hop."""
    problem = widget_token_problem(
        params.token, schema_name=organisation.schema_name, public_id=params.public_id, origin=origin
    )
    if problem is not None:
        close_code = CloseCode.FORBIDDEN if problem.origin else CloseCode.NOT_AUTHENTICATED
        return Refusal(close_code, "forbidden" if problem.origin else "not_authenticated", problem.message)
    activate_public_schema()
    with connection.cursor() as cursor:
        cursor.execute(_STANDING_SQL, [organisation.pk])
        row = cursor.fetchone()
    if row is None:
        return Refusal(CloseCode.UNKNOWN_TENANT, "unknown_tenant", "No organisation uses this address.")
    limits = PlanLimits.of_row(row[2:])
    view = widget_view(
        schema_name=organisation.schema_name,
        limits=limits,
        origin=origin,
        own_origin=own_origin,
        public_id=params.public_id,
    )
    if isinstance(view, Refusal):
        return view
    refusal = standing_refusal_of(organisation.name, row[0], row[1])
    return refusal or WidgetAccess(view, limits)


def widget_view(
    *,
    schema_name: str,
    limits: PlanLimits,
    origin: str,
    own_origin: str | None,
    public_id: str | None = None,
    widget_id: int | None = None,
) -> WidgetView | Refusal:
    """The widget (by public id or id) as a viewer at `origin` may see it now, or why it may not."""
    activate_schema(schema_name)
    try:
        widgets = Widget.objects.select_related("watchlist")
        widget = (widgets.filter(public_id=public_id) if widget_id is None else widgets.filter(pk=widget_id)).first()
        if widget is None:
            return WIDGET_GONE
        if not widget.active:
            return WIDGET_REVOKED
        if not origin_allowed(widget, origin, own_origin):
            return ORIGIN_NOT_ALLOWED
        raw = widget.watchlist.symbols if widget.watchlist is not None else widget.symbols
        symbols, rejected = symbols_validate(raw)
    finally:
        activate_public_schema()
    if not symbols:
        return NO_SYMBOLS
    capped = [Rejection(s, "symbol_limit") for s in symbols[limits.max_symbols :]]
    return WidgetView(
        widget_id=widget.pk,
        public_id=widget.public_id,
        name=widget.name,
        kind=widget.kind,
        theme=widget.theme,
        watchlist_id=widget.watchlist_id,
        symbols=symbols[: limits.max_symbols],
        rejected=rejected + capped,
        max_per_second=widget.max_updates_per_second,
    )


def origin_allowed(widget: Widget, origin: str | None, own_origin: str | None) -> bool:
    """A listed site, or the organisation's own pages (where owners preview their widgets)."""
    return origin is not None and (origin in widget.allowed_origins or origin == own_origin)
