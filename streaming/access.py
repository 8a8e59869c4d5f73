"""The connect step of the websocket and the reads a live connection makes.

Each function sets the schema it queries itself, because the thread pool that runs them does not
carry schema state from one call to the next."""

import time
from dataclasses import dataclass
from datetime import datetime
from importlib import import_module
from typing import Protocol

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.models import User
from billing.limits import LIMITS_SQL_COLUMNS, PLAN_TABLE, PlanLimits, organisation_limits
from symbols.selectors import Rejection, known_symbols_loaded, symbols_validate
from tenants.db import activate_public_schema, activate_schema
from tenants.middleware import organisation_for_host
from tenants.models import Membership, Organisation, SubscriptionStatus
from watchlists.selectors import watchlist_symbols

from .params import StreamParams
from .protocol import NOT_AUTHENTICATED, CloseCode, Refusal

HOST_CACHE_SECONDS = 5.0
DATABASE_SESSIONS = "django.contrib.sessions.backends.db"


@dataclass(frozen=True)
class OrganisationRef:
    """What a websocket keeps of its organisation."""

    pk: int
    schema_name: str
    name: str


class Grant(Protocol):
    """What a connect step that lets a connection in hands the consumer."""

    @property
    def limits(self) -> PlanLimits: ...

    @property
    def symbols(self) -> list[str]: ...

    @property
    def rejected(self) -> list[Rejection]: ...


@dataclass(frozen=True)
class StreamAccess:
    user_id: int
    limits: PlanLimits
    symbols: list[str]
    rejected: list[Rejection]


_host_cache: dict[str, tuple[float, OrganisationRef | None]] = {}


def organisation_ref_cached(hostname: str) -> tuple[bool, OrganisationRef | None]:
    """(found, organisation) from the 5 s host cache; safe on the event loop (no query)."""
    cached = _host_cache.get(hostname)
    if cached is not None and time.monotonic() - cached[0] < HOST_CACHE_SECONDS:
        return True, cached[1]
    return False, None


def organisation_ref_for_host(hostname: str) -> OrganisationRef | None:
    """The organisation at this host (None for unknown hosts and the public host), cached for 5 s."""
    found, ref = organisation_ref_cached(hostname)
    if found:
        return ref
    activate_public_schema()
    organisation = organisation_for_host(hostname)
    if organisation is not None and organisation.pk is not None:
        ref = OrganisationRef(organisation.pk, organisation.schema_name, organisation.name)
    if len(_host_cache) > 10_000:
        _host_cache.clear()
    _host_cache[hostname] = (time.monotonic(), ref)
    return ref


@dataclass(frozen=True)
class SessionClaims:
    """Who a session cookie says is signed in; `user_valid` checks it against the user row."""

    user_id: int
    auth_hash: str

    def user_valid(self, user: User | None) -> bool:
        """As Django's own `get_user`: an active user whose password has not changed since log-in.

        The hash is checked against SECRET_KEY and then each of SECRET_KEY_FALLBACKS, so a key
        rotation keeps streams signed in exactly as long as it keeps pages signed in.
        """
        if user is None or not user.is_active:
            return False
        if constant_time_compare(self.auth_hash, user.get_session_auth_hash()):
            return True
        return any(constant_time_compare(self.auth_hash, h) for h in user.get_session_auth_fallback_hash())


def session_claims(session_key: str | None) -> SessionClaims | None:
    """The signed-in user id and auth hash of a session cookie, or None when signed out.

    The read of Django's database session backend (`SessionStore.load`), without the ORM: this runs
    on every connect, and compiling the query cost more than running it.
    """
    if not session_key:
        return None
    if settings.SESSION_ENGINE == DATABASE_SESSIONS:
        with connection.cursor() as cursor:
            cursor.execute(_SESSION_SQL, [session_key, timezone.now()])
            row = cursor.fetchone()
        data = SessionStore().decode(row[0]) if row else {}
    else:  # another session engine: its own store
        data = import_module(settings.SESSION_ENGINE).SessionStore(session_key).load()
    user_pk, auth_hash = data.get(SESSION_KEY), data.get(HASH_SESSION_KEY)
    if user_pk is None or data.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS or not auth_hash:
        return None
    try:
        return SessionClaims(int(user_pk), str(auth_hash))
    except (TypeError, ValueError):
        return None


_SESSION_SQL = f"SELECT session_data FROM {Session._meta.db_table} WHERE session_key = %s AND expire_date > %s"  # noqa: S608
# The user, their membership, the organisation and its plan: everything a connect checks, one row.
_ACCESS_SQL = f"""
    SELECT u.password, u.is_active, o.subscription_status, o.payment_grace_until, {LIMITS_SQL_COLUMNS}
    FROM {Membership._meta.db_table} m
    JOIN {User._meta.db_table} u ON u.id = m.user_id
    JOIN {Organisation._meta.db_table} o ON o.id = m.organisation_id
    JOIN {PLAN_TABLE} p ON p.id = o.plan_id
    WHERE m.user_id = %s AND m.organisation_id = %s
"""  # noqa: S608 (table and column names from model metadata; values are parameters)


def stream_access(
    *, organisation: OrganisationRef, session_key: str | None, params: StreamParams
) -> StreamAccess | Refusal:
    """The connect step of SPEC, in order: auth, membership, standing, symbols, symbol limit.

    One call (one thread hop, one pooled connection) for the whole check: connects are frequent.
    """
    activate_public_schema()
    claims = session_claims(session_key)
    if claims is None:
        return NOT_AUTHENTICATED
    with connection.cursor() as cursor:
        cursor.execute(_ACCESS_SQL, [claims.user_id, organisation.pk])
        row = cursor.fetchone()
    if row is None:
        # The rare refusals: who is missing, the user, the organisation or the membership?
        if not claims.user_valid(User.objects.filter(pk=claims.user_id).first()):
            return NOT_AUTHENTICATED
        if not Organisation.objects.filter(pk=organisation.pk).exists():
            return Refusal(CloseCode.UNKNOWN_TENANT, "unknown_tenant", "No organisation uses this address.")
        return Refusal(CloseCode.FORBIDDEN, "forbidden", f"You are not a member of {organisation.name}.")
    password, is_active, status, grace_until = row[:4]
    if not claims.user_valid(User(pk=claims.user_id, password=password, is_active=is_active)):
        return NOT_AUTHENTICATED
    refusal = standing_refusal_of(organisation.name, status, grace_until)
    if refusal is not None:
        return refusal
    limits = PlanLimits.of_row(row[4:])
    _verified_remember(session_key, organisation.pk, Verified(time.monotonic(), claims.user_id, limits))
    requested = requested_symbols(schema_name=organisation.schema_name, params=params)
    if isinstance(requested, Refusal):
        return requested
    return symbols_grant(claims.user_id, limits, requested)


@dataclass(frozen=True)
class Verified:
    """A connect check that let a session's user in to an organisation: who, the plan, and when."""

    at: float  # time.monotonic()
    user_id: int
    limits: PlanLimits


_verified: dict[tuple[str, int], Verified] = {}  # (session key, organisation pk)
VERIFIED_MAX = 10_000


def _verified_remember(session_key: str | None, organisation_pk: int, verified: Verified) -> None:
    if not session_key or settings.STREAM_SESSION_CACHE_SECONDS <= 0:
        return
    if len(_verified) >= VERIFIED_MAX:
        _verified.clear()
    _verified[(session_key, organisation_pk)] = verified


def stream_access_cached(
    *, organisation: OrganisationRef, session_key: str | None, params: StreamParams
) -> StreamAccess | Refusal | None:
    """The connect step from this process's check of the same session in the same organisation, if that
    is under STREAM_SESSION_CACHE_SECONDS old (2 s: a sign-out, a password change, a deactivation, a
    removal or a plan change reaches new connects within that); the symbols are checked afresh.

    None when there is no such check, or when the step needs the database (a watchlist, or the symbol
    directory due for its reload): the caller then runs `stream_access`. Safe on the event loop.
    Refusals are never remembered: a refused connect always reads the database again.
    """
    if not session_key or params.watchlist_id is not None or not known_symbols_loaded():
        return None
    verified = _verified.get((session_key, organisation.pk))
    if verified is None or time.monotonic() - verified.at >= settings.STREAM_SESSION_CACHE_SECONDS:
        return None
    return symbols_grant(verified.user_id, verified.limits, list(params.symbols))


def symbols_grant(user_id: int, limits: PlanLimits, requested: list[str]) -> StreamAccess | Refusal:
    """The end of the connect step: the symbols asked for, checked against the directory and the plan."""
    symbols, rejected = symbols_validate(requested)
    if not symbols:
        return Refusal(
            CloseCode.BAD_REQUEST,
            "bad_request",
            "Name at least one known symbol with ?symbols=AAPL,MSFT or ?watchlist=<id>.",
            {"rejected": [r.as_dict() for r in rejected]},
        )
    if len(symbols) > limits.max_symbols:
        return Refusal(
            CloseCode.LIMIT,
            "symbol_limit",
            f"Your plan allows {limits.max_symbols} symbols per stream and {len(symbols)} were asked for. "
            "Remove some, or upgrade your plan.",
            {"limits": limits.as_dict(len(symbols))},
        )
    return StreamAccess(user_id, limits, symbols, rejected)


def standing_refusal(organisation: Organisation) -> Refusal | None:
    """4402 when the subscription is unpaid past its grace period (or cancelled on a paid plan)."""
    return standing_refusal_of(organisation.name, organisation.subscription_status, organisation.payment_grace_until)


def standing_refusal_of(name: str, status: str, grace_until: datetime | None) -> Refusal | None:
    if status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING):
        return None
    if status == SubscriptionStatus.PAST_DUE and grace_until is not None and grace_until > timezone.now():
        return None
    return Refusal(
        CloseCode.PAYMENT_REQUIRED,
        "payment_required",
        f"The subscription of {name} is {SubscriptionStatus(status).label.lower()}; "
        "an owner or admin can settle it on this organisation's billing page, /billing/.",
    )


def requested_symbols(*, schema_name: str, params: StreamParams) -> list[str] | Refusal:
    """The raw symbols of `?symbols=` or of `?watchlist=` (read in the organisation's schema)."""
    if params.watchlist_id is None:
        return list(params.symbols)
    activate_schema(schema_name)
    try:
        symbols = watchlist_symbols(watchlist_id=params.watchlist_id)
    finally:
        activate_public_schema()
    if symbols is None:
        return Refusal(CloseCode.BAD_REQUEST, "bad_request", f"There is no watchlist {params.watchlist_id}.")
    return symbols


def watchlist_stream_symbols(*, schema_name: str, watchlist_id: int) -> tuple[list[str], list[Rejection]] | None:
    """A watchlist's symbols, validated for streaming (read in the organisation's schema); None when it is gone."""
    activate_schema(schema_name)
    try:
        symbols = watchlist_symbols(watchlist_id=watchlist_id)
    finally:
        activate_public_schema()
    return None if symbols is None else symbols_validate(symbols)


def plan_limits(*, organisation_id: int) -> PlanLimits | Refusal:
    """The organisation's current limits, or the refusal that now applies to it."""
    activate_public_schema()
    organisation = Organisation.objects.select_related("plan").filter(pk=organisation_id).first()
    if organisation is None:
        return Refusal(CloseCode.UNKNOWN_TENANT, "unknown_tenant", "This organisation has been deleted.")
    return standing_refusal(organisation) or organisation_limits(organisation)
