"""Plan changes (admin edits now, Stripe webhooks later) reach open connections."""

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from billing.models import Plan
from tenants.models import Membership, Organisation

from .services import member_notify_removed, organisation_notify_deleted, organisations_notify_plan_changed


@receiver(post_save, sender=Plan, dispatch_uid="streaming.plan_saved")
def plan_saved(sender: type[Plan], instance: Plan, created: bool, **kwargs: Any) -> None:
    if not created:
        organisations_notify_plan_changed(organisations=instance.organisations.all())


@receiver(post_save, sender=Organisation, dispatch_uid="streaming.organisation_saved")
def organisation_saved(sender: type[Organisation], instance: Organisation, created: bool, **kwargs: Any) -> None:
    # Any save may change the plan or the subscription's standing; the message is cheap.
    if not created and instance.pk is not None:
        organisations_notify_plan_changed(organisations=[instance])


@receiver(post_delete, sender=Membership, dispatch_uid="streaming.membership_deleted")
def membership_deleted(sender: type[Membership], instance: Membership, **kwargs: Any) -> None:
    schema_name = Organisation.objects.filter(pk=instance.organisation_id).values_list("schema_name", flat=True).first()
    if schema_name:
        member_notify_removed(schema_name=schema_name, user_id=instance.user_id)


@receiver(post_delete, sender=Organisation, dispatch_uid="streaming.organisation_deleted")
def organisation_deleted(sender: type[Organisation], instance: Organisation, **kwargs: Any) -> None:
    organisation_notify_deleted(schema_name=instance.schema_name)
