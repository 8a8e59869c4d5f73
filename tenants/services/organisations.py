"""Writes for organisations: creation, renaming, deletion, and staff deletions in the admin."""

import logging
import time
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from accounts.models import User
from billing.models import Plan
from billing.selectors import plan_get_default
from billing.subscriptions import BillingError, organisation_subscription_cancel
from streaming.services import member_notify_removed, organisation_notify_deleted
from tenants.db import activate_public_schema
from tenants.models import Domain, Membership, Organisation, Role
from tenants.roles import organisation_settings_check_allowed
from tenants.validators import schema_name_for, validate_organisation_name, validate_subdomain

logger = logging.getLogger(__name__)


def organisation_create(*, name: str, slug: str, owner: User, plan: Plan | None = None) -> Organisation:
    """Create an organisation with its schema, domain and owner membership, all or nothing.

    Raises ValidationError (keyed by field) for a bad or taken subdomain; any other failure rolls
    everything back, the schema included (PostgreSQL DDL is transactional).
    """
    slug = slug.strip().lower()
    name = _organisation_name_clean(name)
    try:
        validate_subdomain(slug)
    except ValidationError as exc:
        raise ValidationError({"slug": exc.messages}) from exc
    if Organisation.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"“{slug}” is already taken; please choose another subdomain."})

    started = time.perf_counter()
    try:
        with transaction.atomic():
            organisation = Organisation(
                name=name, slug=slug, schema_name=schema_name_for(slug), plan=plan or plan_get_default()
            )
            # The schema is created below, inside this transaction, so that a failure leaves nothing.
            organisation.auto_create_schema = False
            organisation.save()
            organisation.create_schema(check_if_exists=True, verbosity=0)
            Domain.objects.create(domain=f"{slug}.{settings.BASE_DOMAIN}", tenant=organisation, is_primary=True)
            Membership.objects.create(user=owner, organisation=organisation, role=Role.OWNER)
    except IntegrityError as exc:
        raise ValidationError({"slug": f"“{slug}” is already taken; please choose another subdomain."}) from exc
    finally:
        activate_public_schema()
    logger.info("organisation %s created in %.0f ms", slug, (time.perf_counter() - started) * 1000)
    return organisation


def organisation_rename(*, actor: Membership, name: str) -> Organisation:
    """Give the actor's organisation a new display name (owners and admins); the slug never changes."""
    organisation = actor.organisation
    organisation_settings_check_allowed(actor=actor)
    name = _organisation_name_clean(name)
    if name != organisation.name:
        organisation.name = name
        organisation.save(update_fields=["name"])
    return organisation


def _organisation_name_clean(name: str) -> str:
    """The name without surrounding spaces; ValidationError keyed "name" when empty, too long, or not one line."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give your organisation a name."})
    max_length = Organisation._meta.get_field("name").max_length or 100
    if len(name) > max_length:
        raise ValidationError({"name": f"Use at most {max_length} characters."})
    try:
        validate_organisation_name(name)
    except ValidationError as exc:
        raise ValidationError({"name": exc.messages}) from exc
    return name


def organisation_delete(*, actor: Membership, confirmation: str) -> str:
    """Delete the actor's organisation for good (owners only, confirmed by typing its slug); return its name.

    The schema is dropped (`auto_drop_schema`) and the domains, memberships and invitations go by
    cascade, all in one transaction.
    """
    organisation = actor.organisation
    if actor.role != Role.OWNER:
        raise PermissionDenied(f"Only an owner can delete {organisation.name}.")
    if confirmation.strip() != organisation.slug:
        raise ValidationError(
            {"confirmation": f"Type “{organisation.slug}” exactly to confirm the deletion. Nothing was deleted."}
        )
    name = organisation.name
    # django-tenants drops a schema only from the public schema or its own; the request runs in its own.
    activate_public_schema()
    with transaction.atomic():
        locked = Organisation.objects.select_for_update().get(pk=organisation.pk)
        _subscription_cancel(locked)
        locked.delete()
        organisation_notify_deleted(schema_name=organisation.schema_name)
    logger.info("organisation %s deleted by %s", organisation.slug, actor.user)
    return name


def organisation_staff_delete(*, organisation: Organisation) -> None:
    """Staff delete an organisation (the admin): its schema and rows go, its open streams close."""
    activate_public_schema()
    with transaction.atomic():
        _subscription_cancel(Organisation.objects.select_for_update().get(pk=organisation.pk))
        organisation.delete()
        organisation_notify_deleted(schema_name=organisation.schema_name)


def _subscription_cancel(organisation: Organisation) -> None:
    """A deleted organisation stops paying: its subscription is cancelled first, or nothing is deleted."""
    try:
        organisation_subscription_cancel(organisation=organisation)
    except BillingError as exc:
        raise ValidationError(f"{exc} Nothing was deleted; try again in a few minutes.") from exc


def memberships_staff_removed(*, memberships: Iterable[Membership]) -> None:
    """Staff removed these memberships (the admin, a user deleted): the members' open streams close."""
    for membership in memberships:
        member_notify_removed(schema_name=membership.organisation.schema_name, user_id=membership.user_id)


def user_staff_delete(*, user: User) -> None:
    """Staff delete a user: their memberships go with them, and their open streams close."""
    with transaction.atomic():
        memberships = list(user.memberships.select_related("organisation"))
        user.delete()
        memberships_staff_removed(memberships=memberships)
