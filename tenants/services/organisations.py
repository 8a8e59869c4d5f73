"""Writes for organisations: creation, renaming, deletion, and the log-in hand-off between hosts."""

import logging
import re
import secrets
import time
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from accounts.models import User
from billing.models import Plan
from billing.selectors import plan_get_default
from streaming.services import member_notify_removed, organisation_notify_deleted

from .db import activate_public_schema, connection_discard
from .models import Domain, Membership, Organisation, Role
from .roles import organisation_settings_check_allowed
from .validators import parse_id, schema_name_for, validate_organisation_name, validate_subdomain

logger = logging.getLogger(__name__)

HANDOFF_SALT = "tenants.handoff"
HANDOFF_MAX_AGE_SECONDS = 60
_HANDOFF_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{32}")  # secrets.token_urlsafe(24)


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
            transaction.on_commit(connection_discard)
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
        Organisation.objects.select_for_update().get(pk=organisation.pk).delete()
        organisation_notify_deleted(schema_name=organisation.schema_name)
    logger.info("organisation %s deleted by %s", organisation.slug, actor.user)
    return name


def organisation_staff_delete(*, organisation: Organisation) -> None:
    """Staff delete an organisation (the admin): its schema and rows go, its open streams close."""
    activate_public_schema()
    with transaction.atomic():
        organisation.delete()
        organisation_notify_deleted(schema_name=organisation.schema_name)


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


def handoff_token_create(*, user: AbstractBaseUser, organisation: Organisation) -> str:
    """A signed token that logs `user` in on the organisation's host once, within a minute.

    Session cookies are host-only, so the public host hands the session over with this token. Its
    random nonce is also kept in the cache, under a key that binds it to the user and organisation,
    and using the token deletes that key: the signature alone (the key once leaked) opens nothing.
    """
    nonce = secrets.token_urlsafe(24)
    cache.set(
        _handoff_cache_key(user_id=user.pk, organisation_id=organisation.pk, nonce=nonce), 1, HANDOFF_MAX_AGE_SECONDS
    )
    payload = {"u": user.pk, "o": organisation.pk, "n": nonce}
    return signing.dumps(payload, salt=HANDOFF_SALT, compress=True)


def handoff_token_user(*, token: str, organisation: Organisation) -> User | None:
    """The member that a valid, unused, unexpired hand-off token names for this organisation; the token is used up."""
    try:
        payload = signing.loads(token, salt=HANDOFF_SALT, max_age=HANDOFF_MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict):
        return None
    user_id, nonce = parse_id(payload.get("u")), payload.get("n")
    if user_id is None or parse_id(payload.get("o")) != organisation.pk:
        return None
    if not isinstance(nonce, str) or not _HANDOFF_NONCE_RE.fullmatch(nonce):
        return None
    # delete() is atomic and says whether the key was there: of two requests racing, one wins.
    if not cache.delete(_handoff_cache_key(user_id=user_id, organisation_id=organisation.pk, nonce=nonce)):
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not Membership.objects.filter(user=user, organisation=organisation).exists():
        return None
    return user


def _handoff_cache_key(*, user_id: int, organisation_id: int, nonce: str) -> str:
    return f"tenants.handoff.{user_id}.{organisation_id}.{nonce}"
