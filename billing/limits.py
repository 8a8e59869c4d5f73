"""The one way to read an organisation's plan limits, and to say that they changed.

Nothing outside billing names `Plan`'s columns: streaming, watchlists and templates read a
`PlanLimits`, through the ORM (`organisation_limits`) or on the connect step's fast SQL path
(`LIMITS_SQL_COLUMNS` + `PlanLimits.of_row`). When an organisation's limits change, billing calls
`limits_changed`, which is how open connections hear of it.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from streaming.services import organisations_notify_plan_changed
from tenants.models import Organisation

from .models import LIMIT_FIELDS, Plan, data_label


@dataclass(frozen=True)
class PlanLimits:
    """What an organisation's plan allows (delay_minutes is 0 on a realtime plan)."""

    plan_name: str
    max_symbols: int
    max_streams: int
    max_watchlists: int
    max_widgets: int
    max_widget_viewers: int
    realtime: bool
    delay_minutes: int
    # Last, with a default: code that builds limits by hand for streams alone need not name it.
    max_alerts: int = 0

    @classmethod
    def of_plan(cls, plan: Plan) -> "PlanLimits":
        return cls(
            plan_name=plan.name,
            max_symbols=plan.max_symbols_per_stream,
            max_streams=plan.max_streams,
            max_watchlists=plan.max_watchlists,
            max_widgets=plan.max_widgets,
            max_widget_viewers=plan.max_widget_viewers,
            realtime=plan.realtime,
            delay_minutes=0 if plan.realtime else plan.delay_minutes,
            max_alerts=plan.max_alerts,
        )

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> "PlanLimits":
        """From the values of LIMITS_SQL_COLUMNS, in that order."""
        return cls.of_plan(Plan(**dict(zip(("name", *LIMIT_FIELDS), row, strict=True))))

    @property
    def data_label(self) -> str:
        """How fresh the quotes are, for people."""
        return data_label(realtime=self.realtime, delay_minutes=self.delay_minutes)

    def as_dict(self, symbols: int) -> dict[str, Any]:
        """The `limits` object of the websocket protocol."""
        return {"max_symbols": self.max_symbols, "symbols": symbols, "max_streams": self.max_streams}


# The plan's columns a joined query selects (alias `p`) for PlanLimits.of_row: the connect step
# reads them with the session, membership and organisation in one statement.
LIMITS_SQL_COLUMNS = ", ".join(f"p.{column}" for column in ("name", *LIMIT_FIELDS))
PLAN_TABLE = Plan._meta.db_table


def organisation_limits(organisation: Organisation) -> PlanLimits:
    """The limits of the organisation's plan (its `plan` is read if not loaded yet)."""
    return PlanLimits.of_plan(organisation.plan)


def organisation_limits_locked(organisation: Organisation) -> PlanLimits:
    """The organisation's current limits with its row locked (inside a transaction): creations that count
    against a limit queue behind each other, so two at once cannot both take the last place."""
    locked = Organisation.objects.select_for_update(of=("self",)).select_related("plan").get(pk=organisation.pk)
    return organisation_limits(locked)


def limits_changed(*, organisations: Iterable[Organisation]) -> None:
    """The organisations' limits or standing changed: open connections apply them, once committed."""
    organisations_notify_plan_changed(organisations=organisations)
