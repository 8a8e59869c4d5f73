"""Plan changes (admin edits now, Stripe webhooks later) reach open connections."""

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from billing.models import Plan
from tenants.models import Organisation

from .services import organisations_notify_plan_changed


@receiver(post_save, sender=Plan, dispatch_uid="streaming.plan_saved")
def plan_saved(sender: type[Plan], instance: Plan, created: bool, **kwargs: Any) -> None:
    if not created:
        organisations_notify_plan_changed(organisations=instance.organisations.all())


@receiver(post_save, sender=Organisation, dispatch_uid="streaming.organisation_saved")
def organisation_saved(sender: type[Organisation], instance: Organisation, created: bool, **kwargs: Any) -> None:
    # Any save may change the plan or the subscription's standing; the message is cheap.
    if not created and instance.pk is not None:
        organisations_notify_plan_changed(organisations=[instance])
