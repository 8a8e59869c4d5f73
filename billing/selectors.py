"""Reads of plans and of an organisation's billing."""

from dataclasses import dataclass

from django.db.models import QuerySet

from streaming.state import LeaseKind, lease_ids_sync
from tenants.models import Organisation
from watchlists.selectors import watchlist_list
from widgets.selectors import widget_list, widget_viewers

from .conf import billing_settings
from .limits import PlanLimits, organisation_limits
from .models import BillingHistory, Plan


def plan_list_public() -> QuerySet[Plan]:
    """Plans shown on the pricing page, cheapest first."""
    return Plan.objects.filter(is_public=True).order_by("price_monthly", "name")


def plan_get_default() -> Plan:
    """The plan new organisations get; the cheapest public plan when staff unset the default."""
    plan = Plan.objects.filter(is_default=True).first()
    if plan is None:
        plan = plan_list_public().first() or Plan.objects.order_by("price_monthly").first()
    if plan is None:
        raise Plan.DoesNotExist("No plan exists: run `python manage.py bootstrap` to seed the plans.")
    return plan


@dataclass(frozen=True)
class Usage:
    label: str
    used: int
    limit: int

    @property
    def full(self) -> bool:
        return self.used >= self.limit


@dataclass(frozen=True)
class BillingOverview:
    """What the billing page shows: plan, limits, usage against them, history, and what can be bought."""

    plan: Plan
    limits: PlanLimits
    usage: list[Usage]
    history: list[BillingHistory]
    plans: list[Plan]
    configured: bool
    subscribed: bool


def organisation_billing_overview(*, organisation: Organisation) -> BillingOverview:
    """Read in the organisation's schema (its watchlists), on its host's request."""
    limits = organisation_limits(organisation)
    usage = [
        Usage("Open streams", organisation_open_streams(organisation=organisation), limits.max_streams),
        Usage("Watchlists", watchlist_list().count(), limits.max_watchlists),
        Usage("Widgets", widget_list().count(), limits.max_widgets),
        Usage("Widget viewers now", sum(widget_viewers(organisation=organisation).values()), limits.max_widget_viewers),
    ]
    return BillingOverview(
        plan=organisation.plan,
        limits=limits,
        usage=usage,
        history=list(organisation.billing_history.all()[:50]),
        plans=[plan for plan in plan_list_public() if plan.price_monthly > 0 and plan.stripe_price_id],
        configured=billing_settings.is_configured,
        subscribed=bool(organisation.stripe_subscription_id),
    )


def organisation_open_streams(*, organisation: Organisation) -> int:
    """Signed-in connections open now (the stream leases the connect step takes)."""
    return len(lease_ids_sync(LeaseKind.STREAM, organisation.schema_name))
