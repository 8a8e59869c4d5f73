"""The log-in hand-off between hosts: a signed, single-use token that opens a session on an organisation's host."""

import re
import secrets

from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.core.cache import cache

from accounts.models import User
from tenants.models import Membership, Organisation
from tenants.validators import parse_id

HANDOFF_SALT = "tenants.handoff"
HANDOFF_MAX_AGE_SECONDS = 60
_HANDOFF_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{32}")  # secrets.token_urlsafe(24)


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
