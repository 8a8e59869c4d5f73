"""Reads for organisations, memberships and invitations."""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db.models import Case, QuerySet, Value, When
from django.http import HttpRequest
from django.urls import reverse

from accounts.models import User

from .models import Invitation, Membership, Organisation, Role
from .roles import membership_can_manage


def membership_get(*, user: "User | AnonymousUser", organisation: Organisation) -> Membership | None:
    """The user's membership of this organisation, or None (also for anonymous users)."""
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user__pk=user.pk, organisation=organisation).first()


def landing_path(*, user: "User", following: str | None = None) -> str:
    """Where a new or newly confirmed user goes on the public host: their organisation, opened (and then
    `following`, a path on its host), or the list of their organisations when they have none."""
    membership = membership_list_for_user(user=user).first()
    if membership is None:
        return reverse("organisation_list", urlconf=settings.PUBLIC_SCHEMA_URLCONF)
    opened = reverse("organisation_open", urlconf=settings.PUBLIC_SCHEMA_URLCONF, args=[membership.organisation.slug])
    return f"{opened}?{urlencode({'next': following})}" if following else opened


def membership_list_for_user(*, user: "User | AnonymousUser") -> QuerySet[Membership]:
    """Every organisation the user belongs to, with its plan."""
    if not user.is_authenticated:
        return Membership.objects.none()
    return (
        Membership.objects.filter(user=user)
        .select_related("organisation", "organisation__plan")
        .order_by("organisation__name")
    )


def membership_list_for_organisation(*, organisation: Organisation) -> QuerySet[Membership]:
    """The organisation's members: owners first, then admins, then members, each by e-mail."""
    rank = Case(*(When(role=role, then=Value(i)) for i, role in enumerate(Role)), default=Value(len(Role)))
    return (
        Membership.objects.filter(organisation=organisation)
        .select_related("user", "organisation")
        .order_by(rank, "user__email")
    )


def membership_get_in_organisation(*, organisation: Organisation, membership_id: int) -> Membership | None:
    """A membership of this organisation by id; None for an id of another organisation's member."""
    return (
        Membership.objects.select_related("user", "organisation")
        .filter(pk=membership_id, organisation=organisation)
        .first()
    )


@dataclass(frozen=True)
class MemberRow:
    """One line of the members page, with what the viewing member may do to it."""

    membership: Membership
    is_self: bool
    can_manage: bool


def member_rows(*, actor: Membership) -> list[MemberRow]:
    """The actor's organisation's members, each with whether the actor may change or remove them."""
    return [
        MemberRow(membership=m, is_self=m.pk == actor.pk, can_manage=membership_can_manage(actor=actor, target=m))
        for m in membership_list_for_organisation(organisation=actor.organisation)
    ]


def organisation_owner_count(*, organisation: Organisation) -> int:
    return Membership.objects.filter(organisation=organisation, role=Role.OWNER).count()


def invitation_list_pending(*, organisation: Organisation) -> QuerySet[Invitation]:
    """Invitations of this organisation not accepted yet, newest first."""
    return (
        Invitation.objects.filter(organisation=organisation, accepted_at__isnull=True)
        .select_related("invited_by")
        .order_by("-created")
    )


def invitation_get_in_organisation(*, organisation: Organisation, invitation_id: int) -> Invitation | None:
    """An invitation of this organisation by id; None for an id of another organisation's."""
    return Invitation.objects.select_related("organisation").filter(pk=invitation_id, organisation=organisation).first()


def user_exists(*, email: str) -> bool:
    return User.objects.filter(email__iexact=email.strip()).exists()


def organisation_host(*, organisation: Organisation) -> str:
    """The organisation's primary host name."""
    domain = organisation.get_primary_domain()
    if domain is None:
        raise Organisation.DoesNotExist(f"Organisation {organisation.slug} has no primary domain.")
    return str(domain.domain)


def organisation_url(*, organisation: Organisation, request: HttpRequest, path: str = "/") -> str:
    """An absolute URL on the organisation's host, keeping the scheme and port the request came in on."""
    return _absolute_url(request=request, host=organisation_host(organisation=organisation), path=path)


def public_url(*, request: HttpRequest, path: str = "/") -> str:
    """An absolute URL on the public host (BASE_DOMAIN), same scheme and port as the request."""
    return _absolute_url(request=request, host=settings.BASE_DOMAIN, path=path)


def _absolute_url(*, request: HttpRequest, host: str, path: str) -> str:
    port = request.get_port()
    default_port = "443" if request.is_secure() else "80"
    netloc = host if port in ("", default_port) else f"{host}:{port}"
    return f"{request.scheme}://{netloc}{path}"
