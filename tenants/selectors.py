"""Reads for organisations and memberships."""

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import User

from .models import Membership, Organisation


def membership_get(*, user: "User | AnonymousUser", organisation: Organisation) -> Membership | None:
    """The user's membership of this organisation, or None (also for anonymous users)."""
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user__pk=user.pk, organisation=organisation).first()


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
    return Membership.objects.filter(organisation=organisation).select_related("user").order_by("role", "user__email")


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
