"""Host → organisation resolution, and the membership gate of every tenant page."""

import select
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.db import DatabaseError, OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import get_public_schema_name

from .db import activate_public_schema
from .models import Domain, Membership, Organisation
from .selectors import membership_get, public_url

# Tenant-host paths that a signed-out visitor or a non-member may open.
OPEN_TENANT_PATHS = (
    "/accounts/login/",
    "/accounts/logout/",
    "/accounts/signup/",
    "/accounts/password/reset/",
    "/handoff/",
    "/static/",
)


def public_tenant() -> Organisation:
    """The stand-in tenant of the public host: no row, just the public schema."""
    return Organisation(schema_name=get_public_schema_name(), name="Tickerdeck", slug="")


def organisation_for_host(hostname: str) -> Organisation | None:
    """The organisation served at this host name, the public stand-in for BASE_DOMAIN, or None."""
    hostname = hostname.lower().rstrip(".")
    if hostname == settings.BASE_DOMAIN:
        return public_tenant()
    domain = Domain.objects.select_related("tenant", "tenant__plan").filter(domain=hostname).first()
    return domain.tenant if domain else None


class OrganisationMiddleware(TenantMainMiddleware):
    """django-tenants' middleware: unknown hosts are a 404 page, a database outage a 503 page."""

    def get_tenant(self, domain_model: type[Domain], hostname: str) -> Organisation:
        organisation = organisation_for_host(hostname)
        if organisation is None:
            raise domain_model.DoesNotExist(hostname)
        return organisation

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        try:
            # Fail every page at once when the database is down, even one that would not query it.
            database_connection_ensure()
            response: HttpResponse | None = super().process_request(request)
        except DatabaseError:
            return service_unavailable(request)
        if response is None:
            tenant: Organisation = request.tenant  # type: ignore[attr-defined]
            request.organisation = None if tenant.schema_name == get_public_schema_name() else tenant  # type: ignore[attr-defined]
        return response

    def no_tenant_found(self, request: HttpRequest, hostname: str) -> HttpResponse:
        activate_public_schema()
        return render(request, "404_tenant.html", {"hostname": hostname}, status=404)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DatabaseError) and not _database_usable():
            return service_unavailable(request)
        return None


class MembershipRequiredMiddleware:
    """Every page of an organisation's host needs a signed-in member, except the log-in pages and the
    views marked with Django's `login_not_required` (a widget's script and token, for anyone's site)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        organisation: Organisation | None = getattr(request, "organisation", None)
        if organisation is None or request.path.startswith(OPEN_TENANT_PATHS) or _open_view(request):
            return self.get_response(request)
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        membership = membership_get(user=request.user, organisation=organisation)
        if membership is None:
            return render(
                request,
                "tenants/not_member.html",
                {
                    "organisation": organisation,
                    "organisations_url": public_url(request=request, path="/organisations/"),
                },
                status=403,
            )
        request.membership = membership  # type: ignore[attr-defined]
        return self.get_response(request)


def _open_view(request: HttpRequest) -> bool:
    """Whether the path resolves to a view marked `login_not_required` (unknown paths are not open)."""
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return False
    return getattr(match.func, "login_required", True) is False


def request_organisation(request: HttpRequest) -> Organisation:
    """The organisation of the host this request came to (only on an organisation's host)."""
    organisation: Organisation | None = getattr(request, "organisation", None)
    if organisation is None:
        raise RuntimeError("request_organisation() on the public host")
    return organisation


def request_membership(request: HttpRequest) -> Membership:
    """The signed-in member on an organisation's host, as MembershipRequiredMiddleware set it."""
    membership: Membership = request.membership  # type: ignore[attr-defined]
    return membership


def service_unavailable(request: HttpRequest) -> HttpResponse:
    return render(request, "503.html", status=503)


DEAD_CONNECTIONS_MAX = 50  # more than the pool holds (DATABASE_POOL_MAX)


def database_connection_ensure() -> None:
    """A working connection for this request, or DatabaseError.

    The pool lends its idle connections unchecked (a round trip per loan costs too much), so after a
    database restart it lent dead ones: pages that make no query answered 200 during the outage,
    and each dead connection failed a request after it. One the server closed has something to read
    (its FATAL, or the end of the stream): only then is it tried, given back broken (the pool drops
    it) and another taken.
    """
    for _ in range(DEAD_CONNECTIONS_MAX):
        connection.ensure_connection()
        raw = connection.connection
        if raw is None or not readable_now(raw.fileno()) or _database_usable():
            return
        connection.close()
    raise OperationalError("every pooled database connection was closed by the server")


def readable_now(fd: int) -> bool:
    """Whether a socket has something to read (or was closed) right now, without waiting.

    poll(), not select(): select() refuses descriptors past 1024, and a web process holding a thousand
    websockets gives the connections its pool opens later such numbers (the soak saw every page and
    widget token of that process answer 500).
    """
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def _database_usable() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True
