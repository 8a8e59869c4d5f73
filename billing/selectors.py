"""Reads of plans."""

from django.db.models import QuerySet

from .models import Plan


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
