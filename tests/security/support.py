"""The isolation audit's machinery: every URL pattern of both URLconfs, two seeded organisations, probes.

Organisation A is the target and B the intruder's own. Each holds rows whose names are unique
strings (its "markers"); a refusal must never show another organisation's markers.
"""

import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import User
from accounts.services import owner_get_or_create
from alerts.models import Alert, AlertCondition
from alerts.services import AlertSpec, alert_create
from tenants.db import activate_public_schema
from tenants.models import Invitation, Membership, Role
from tenants.services.handoff import handoff_token_create
from tenants.services.team import invitation_token_create
from tests.conftest import PASSWORD
from tests.live import record_figure
from tests.streaming.conftest import Committed, Tenant
from tests.watchlists.conftest import inside
from watchlists.models import Watchlist
from watchlists.services import watchlist_create
from widgets.models import Widget
from widgets.services import WidgetSpec, widget_create
from widgets.tokens import widget_token_issue

PUBLIC = "public"
TENANT = "tenant"
URLCONFS = {PUBLIC: settings.PUBLIC_SCHEMA_URLCONF, TENANT: settings.ROOT_URLCONF}
SITE = "https://www.example.com"  # the one Origin the seeded widgets allow
SPOOFED_HOST = "evil.example"  # not under BASE_DOMAIN
UNKNOWN_HOST = "no-such-org.localhost"  # under BASE_DOMAIN, but no organisation's
HUGE_ID = "9" * 20  # past bigint: the <int:…> converter takes it, PostgreSQL does not


# -- the URL patterns ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Pattern:
    """One URL pattern: which URLconf, its full route (as Django prints it) and its name, if any."""

    urlconf: str  # PUBLIC or TENANT
    route: str
    name: str | None

    @property
    def key(self) -> str:
        """How the registry names it: the route, then `#name` (one route may carry two names)."""
        return f"{self.route}#{self.name}" if self.name else self.route

    def path(self, values: Mapping[str, str]) -> str:
        """A path of this pattern with its arguments filled in (converters or regex groups alike)."""
        filled = _fill_regex_groups(self.route, values)  # first: "(?P<name>" holds "<name>" too
        filled = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], filled)
        filled = filled.replace("^", "").replace("$", "").replace("\\.", ".")
        return "/" + filled


def _fill_regex_groups(route: str, values: Mapping[str, str]) -> str:
    """Replace each `(?P<name>…)` (with balanced parentheses inside) by values[name]."""
    out, position = [], 0
    while (start := route.find("(?P<", position)) != -1:
        name = route[start + 4 : route.index(">", start)]
        depth, end = 0, start
        for end in range(start, len(route)):
            depth += {"(": 1, ")": -1}.get(route[end], 0) if route[end - 1] != "\\" else 0
            if depth == 0:
                break
        out += [route[position:start], values[name]]
        position = end + 1
    return "".join([*out, route[position:]])


def url_patterns() -> list[Pattern]:
    """Every pattern of both URLconfs, the admin's included (identical duplicates once)."""
    found: set[Pattern] = set()
    for kind, urlconf in URLCONFS.items():
        for route, name in _walk(get_resolver(urlconf), "", ()):
            found.add(Pattern(kind, route, name))
    return sorted(found, key=lambda pattern: (pattern.urlconf, pattern.key))


def _walk(resolver: URLResolver, prefix: str, namespaces: tuple[str, ...]) -> Iterator[tuple[str, str | None]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = (*namespaces, entry.namespace) if entry.namespace else namespaces
            yield from _walk(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), ":".join((*namespaces, entry.name)) if entry.name else None


# -- two organisations with marked data -----------------------------------------------------------
@dataclass
class Org:
    """A committed organisation, its rows (ids of its own schema) and the strings that mark its data."""

    tenant: Tenant
    member: User
    membership_id: int
    invitation_id: int
    invitation_token: str
    watchlist_ids: list[int]
    widget_ids: list[int]
    widget_public_ids: list[str]
    alert_ids: list[int]
    markers: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.tenant.host

    @property
    def slug(self) -> str:
        return str(self.tenant.organisation.slug)

    @property
    def owner(self) -> User:
        return self.tenant.owner

    def widget_token(self, public_id: str | None = None, *, origin: str = SITE, schema: str | None = None) -> str:
        """A viewer token as the token endpoint issues it (for this organisation's widget unless told)."""
        return widget_token_issue(
            schema_name=schema or self.tenant.schema, public_id=public_id or self.widget_public_ids[0], origin=origin
        )

    def handoff_token(self) -> str:
        return handoff_token_create(user=self.owner, organisation=self.tenant.organisation)


@dataclass
class World:
    a: Org  # the organisation every probe tries to reach
    b: Org  # the intruder's organisation: one more row of each kind, so its last ids exist only in B

    def b_only(self, kind: str) -> int:
        """An id of B's that names no row of A's schema."""
        ids: list[int] = getattr(self.b, f"{kind}_ids")
        return max(ids)


def seed_org(committed: Committed, rows: int) -> Org:
    """An organisation on Pro with a member, a pending invitation and `rows` watchlists, widgets and alerts."""
    tenant = committed.tenant_sync("pro")
    organisation, tag = tenant.organisation, uuid.uuid4().hex[:12]
    member = owner_get_or_create(email=f"member-{tag}@audit.example", password=PASSWORD)
    committed.users.append(member)
    membership = Membership.objects.create(user=member, organisation=organisation, role=Role.MEMBER)
    invitation = Invitation.objects.create(organisation=organisation, email=f"invitee-{tag}@audit.example")
    markers = [member.email, invitation.email]
    watchlists, widgets, alerts = [], [], []
    with inside(organisation):
        for n in range(rows):
            names = [f"Watchlist{n}-{tag}", f"Widget{n}-{tag}", f"Alert{n}-{tag}"]
            markers += names
            watchlists.append(watchlist_create(organisation=organisation, name=names[0], symbols=("AAPL",)))
            spec = WidgetSpec(name=names[1], symbols=("AAPL", "MSFT"), allowed_origins=(SITE,))
            widgets.append(widget_create(organisation=organisation, spec=spec))
            alert = AlertSpec(name=names[2], symbol="AAPL", condition=AlertCondition.PRICE_ABOVE, level=Decimal("1000"))
            alerts.append(alert_create(organisation=organisation, spec=alert))
    return Org(
        tenant=tenant,
        member=member,
        membership_id=membership.pk,
        invitation_id=invitation.pk,
        invitation_token=invitation_token_create(invitation=invitation),
        watchlist_ids=[w.pk for w in watchlists],
        widget_ids=[w.pk for w in widgets],
        widget_public_ids=[w.public_id for w in widgets],
        alert_ids=[a.pk for a in alerts],
        markers=markers,
    )


def rows_in(org: Org) -> dict[str, set[object]]:
    """The names of the organisation's rows as its schema holds them now (to see that no probe wrote)."""
    with inside(org.tenant.organisation):
        return {
            "watchlists": set(Watchlist.objects.values_list("name", flat=True)),
            "widgets": {f"{w.name} {w.active}" for w in Widget.objects.all()},
            "alerts": {f"{a.name} {a.active}" for a in Alert.objects.all()},
            "members": set(
                Membership.objects.filter(organisation=org.tenant.organisation).values_list("user_id", "role")
            ),
        }


def seed_world(committed: Committed) -> World:
    world = World(a=seed_org(committed, rows=1), b=seed_org(committed, rows=2))
    for kind, model in (("watchlist", Watchlist), ("widget", Widget), ("alert", Alert)):
        with inside(world.a.tenant.organisation):
            assert not model.objects.filter(pk=world.b_only(kind)).exists()
    return world


# -- requests ---------------------------------------------------------------------------------------
def client_for(host: str, user: User | None = None) -> Client:
    """A test client on `host`, signed in as `user` there (a session of that host), or signed out."""
    client = Client(HTTP_HOST=host)
    if user is not None:
        client.force_login(user)
    return client


def send(client: Client, method: str, path: str, data: Mapping[str, str] | None = None, **headers: str) -> HttpResponse:
    response: HttpResponse = getattr(client, method.lower())(path, data=data, headers=headers or None)
    activate_public_schema()  # a tenant request leaves the connection in its schema
    return response


def body_of(response: HttpResponse) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")  # type: ignore[attr-defined]
    return response.content.decode(errors="replace")


# -- path arguments ----------------------------------------------------------------------------------
def arg_value(world: World, kind: str) -> str:
    """The value an intruder tries: A's own (a real row of A's, a real slug), or a forged one where
    the argument is a token (A's own would be a credential, which no intruder holds)."""
    a, b = world.a, world.b
    values = {
        "watchlist": str(a.watchlist_ids[0]),
        "widget": str(a.widget_ids[0]),
        "alert": str(a.alert_ids[0]),
        "membership": str(a.membership_id),
        "invitation": str(a.invitation_id),
        "public_id": a.widget_public_ids[0],
        "handoff": b.handoff_token(),  # B's token, on A's host
        "plan": "pro",
        "org_slug": a.slug,
        "admin_object": str(a.tenant.organisation.pk),
        "content_type": "1",
        "app_label": "billing",
        "uidb36": "1",
        "garbage": "not-a-real-key",
    }
    return values[kind]


def forged_values(world: World, kind: str) -> list[str]:
    """What A's own member tries on A's host: B's ids (which A's schema lacks), a huge and a non-numeric id."""
    b = world.b
    ids = {"watchlist", "widget", "alert"}
    if kind in ids:
        return [str(world.b_only(kind)), HUGE_ID, "x1"]
    forged = {
        "membership": [str(b.membership_id), HUGE_ID, "x1"],
        "invitation": [str(b.invitation_id), HUGE_ID, "x1"],
        "public_id": [b.widget_public_ids[0], "w_" + "A" * 16],
        "handoff": [b.handoff_token(), "not-a-token"],
    }
    return forged.get(kind, [])


# -- the figure for docs/RELIABILITY.md -------------------------------------------------------------
@dataclass
class Tally:
    """What one test module probed: how many probes, over which subjects (patterns, actions)."""

    probes: int = 0
    subjects: set[str] = field(default_factory=set)


@contextmanager
def tally_recorded(name: str, summary: Callable[[Tally], str]) -> Iterator[Tally]:
    """Count the module's probes, then record them as one figure (tests.live.record_figure)."""
    counts = Tally()
    yield counts
    if counts.probes:
        record_figure(name, summary(counts))
