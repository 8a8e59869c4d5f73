"""Tenant isolation audit over HTTP: every URL pattern of both URLconfs, probed by everyone who must be refused.

For each pattern (tests/security/routes.py says how): a signed-out visitor; B's owner, signed in on
A's host (or on the public host); A's own owner with B's ids, a huge id and a non-numeric one; a
spoofed Host; an unknown organisation's subdomain; and the path on the other kind of host. Every
answer is checked against the expected refusal, for the absence of the other organisation's data,
and the rows of both organisations are compared before and after.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import Resolver404, resolve

from tests.security.routes import REGISTRY, Expect, Route, expect
from tests.security.support import (
    PUBLIC,
    SITE,
    SPOOFED_HOST,
    TENANT,
    UNKNOWN_HOST,
    URLCONFS,
    Pattern,
    Tally,
    World,
    arg_value,
    body_of,
    client_for,
    forged_values,
    rows_in,
    send,
    tally_recorded,
    url_patterns,
)

pytestmark = pytest.mark.django_db

PATTERNS = url_patterns()
METHODS = ("GET", "POST")
SPOOFED = expect(404, label="bare 404 (django-tenants: DisallowedHost)")
UNKNOWN = expect(404, says="No organisation at", label="404 unknown organisation")


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    def summary(counts: Tally) -> str:
        return f"{len(counts.subjects)} of {len(PATTERNS)} URL patterns, {counts.probes} probes, all as expected"

    with tally_recorded("isolation audit (HTTP)", summary) as counts:
        yield counts


@dataclass(frozen=True)
class Probe:
    who: str
    client: Client
    method: str
    path: str
    expected: Expect
    hidden: tuple[str, ...]  # markers the answer must not contain
    headers: tuple[tuple[str, str], ...] = ()


def probes(world: World, pattern: Pattern, route: Route) -> Iterator[Probe]:
    a, b = world.a, world.b
    on_a = pattern.urlconf == TENANT
    host = a.host if on_a else "localhost"
    both = tuple(a.markers + b.markers)
    path = pattern.path({name: arg_value(world, kind) for name, kind in route.args.items()})
    anonymous, intruder, owner = client_for(host), client_for(host, b.owner), client_for(host, a.owner)
    for method in METHODS:
        yield Probe("anonymous", anonymous, method, path, route.anonymous, both)
        yield Probe("B's owner", intruder, method, path, route.intruder, tuple(a.markers))
        spoofed = (("host", SPOOFED_HOST), ("x-forwarded-host", host))
        yield Probe("spoofed Host", owner, method, path, SPOOFED, both, spoofed)
        yield Probe("unknown organisation", owner, method, path, UNKNOWN, both, (("host", UNKNOWN_HOST),))
    if route.forged is not None:
        for name, kind in route.args.items():
            for value in forged_values(world, kind):
                forged = pattern.path({n: value if n == name else arg_value(world, k) for n, k in route.args.items()})
                for method in METHODS:
                    yield Probe(
                        f"A's owner, {name}={value[:24]}", owner, method, forged, route.forged, tuple(b.markers)
                    )
    other_kind = PUBLIC if on_a else TENANT
    if not _resolves(path, other_kind):  # the pattern's path on the other kind of host is no page at all
        other_host = "localhost" if on_a else a.host
        yield Probe("A's owner, other host", owner, "GET", path, expect(404), tuple(b.markers), (("host", other_host),))


def _resolves(path: str, kind: str) -> bool:
    try:
        resolve(path, URLCONFS[kind])
    except Resolver404:
        return False
    return True


def check(probe: Probe, route: Route, response: HttpResponse) -> None:
    what = f"{probe.method} {probe.path} as {probe.who}"
    body = body_of(response)
    status = response.status_code
    if probe.method not in route.methods and status == 405:
        pass  # a method the view does not take is refused whoever asks
    else:
        assert status in probe.expected.statuses, f"{what}: {status}, expected {probe.expected.label or probe.expected}"
        location = response.get("Location", "")
        if probe.expected.location and status in (301, 302, 303):
            assert location.startswith(probe.expected.location), f"{what}: redirected to {location}"
        if probe.expected.says:
            assert probe.expected.says in body, f"{what}: the page does not say {probe.expected.says!r}"
    if probe.expected is SPOOFED:
        assert not body.strip(), f"{what}: a spoofed Host got a page"
    leaked = [marker for marker in probe.hidden if marker in body or marker in response.get("Location", "")]
    assert not leaked, f"{what}: the answer shows {leaked}"


@pytest.fixture(scope="module")
def rows_before(world: World, django_db_blocker: object) -> dict[str, object]:
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        return {"a": rows_in(world.a), "b": rows_in(world.b)}


def test_every_url_pattern_is_in_the_registry() -> None:
    found = {(pattern.urlconf, pattern.key) for pattern in PATTERNS}
    assert not sorted(found - REGISTRY.keys()), "URL patterns nobody said how to probe: add them to routes.py"
    assert not sorted(REGISTRY.keys() - found), "registry entries whose pattern is gone: remove them"


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda pattern: f"{pattern.urlconf}:{pattern.key}")
def test_every_probe_of_the_pattern_is_refused(
    world: World, rows_before: dict[str, object], tally: Tally, pattern: Pattern
) -> None:
    route = REGISTRY.get((pattern.urlconf, pattern.key))
    assert route is not None, f"{pattern.urlconf} pattern {pattern.key!r} is not in tests/security/routes.py"
    count = 0
    for probe in probes(world, pattern, route):
        data = route.data if probe.method == "POST" else None
        check(probe, route, send(probe.client, probe.method, probe.path, data, **dict(probe.headers)))
        count += 1
    assert {"a": rows_in(world.a), "b": rows_in(world.b)} == rows_before, "a refused probe changed data"
    tally.subjects.add(f"{pattern.urlconf}:{pattern.key}")
    tally.probes += count


def test_the_markers_are_on_as_own_pages(world: World) -> None:
    """The markers are real: A's owner sees each of them, so their absence elsewhere means something."""
    owner = client_for(world.a.host, world.a.owner)
    pages = "".join(
        body_of(send(owner, "GET", path)) for path in ("/watchlists/", "/widgets/", "/alerts/", "/members/")
    )
    assert [marker for marker in world.a.markers if marker not in pages] == []


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_the_endpoints_before_the_tenant_lookup_tell_strangers_nothing(world: World, path: str) -> None:
    """Health checks and metrics answer on every host (core/middleware.py, core/metrics.py), outside the URLconfs."""
    for host in (world.a.host, "localhost", SPOOFED_HOST, UNKNOWN_HOST):
        response = send(client_for(host, world.b.owner), "GET", path)
        body = body_of(response)
        if path == "/metrics":
            assert response.status_code in (401, 403, 404), f"{path} on {host}: {response.status_code}"
        else:
            assert response.status_code == 200
            assert json.loads(body_of(response)) == {"status": "ok"}  # no checks, no feed details for a non-operator
        assert not [marker for marker in world.a.markers if marker in body]


def test_widget_token_for_an_allowed_origin_is_served(world: World) -> None:
    """The control of the token probes: the widget's own Origin gets a token, with its CORS header."""
    response = send(client_for(world.a.host), "POST", f"/widgets/{world.a.widget_public_ids[0]}/token/", origin=SITE)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SITE
    assert set(json.loads(body_of(response))) == {"token", "expires_in"}


@pytest.mark.parametrize(
    "case", ["B's widget on A's host", "an Origin not on the list", "a lookalike Origin", "Origin null"]
)
def test_widget_token_is_refused_without_a_cors_header(world: World, case: str) -> None:
    a, b = world.a, world.b
    public_id, origin, status = {
        "B's widget on A's host": (b.widget_public_ids[0], SITE, 404),
        "an Origin not on the list": (a.widget_public_ids[0], "https://evil.example", 403),
        "a lookalike Origin": (a.widget_public_ids[0], SITE + ".evil.example", 403),
        "Origin null": (a.widget_public_ids[0], "null", 403),
    }[case]
    response = send(client_for(a.host), "POST", f"/widgets/{public_id}/token/", origin=origin)
    assert response.status_code == status
    assert "Access-Control-Allow-Origin" not in response
    assert "token" not in json.loads(body_of(response))


def test_a_handoff_token_of_a_works_only_on_as_host(world: World) -> None:
    """A's owner's hand-off token, presented on B's host, is refused and signs nobody in there."""
    client = client_for(world.b.host)
    response = send(client, "GET", f"/handoff/{world.a.handoff_token()}/")
    assert response.status_code == 400
    assert send(client, "GET", "/watchlists/").status_code == 302  # still signed out on B's host


def test_ids_in_a_query_string_or_a_form_name_this_organisations_rows_only(world: World) -> None:
    """B's watchlist id where a page or form takes one: the dashboard ignores it, a widget cannot follow it."""
    a, b = world.a, world.b
    owner = client_for(a.host, a.owner)
    dashboard = send(owner, "GET", f"/?watchlist={world.b_only('watchlist')}")
    assert dashboard.status_code == 200
    assert not [marker for marker in b.markers if marker in body_of(dashboard)]

    def follow(watchlist_id: int) -> HttpResponse:
        form = {"name": f"Follows {watchlist_id}", "kind": "quote_table", "theme": "light", "symbols": "",
                "watchlist": str(watchlist_id), "max_updates_per_second": "", "allowed_origins": SITE}  # fmt: skip
        return send(owner, "POST", "/widgets/new/", form)

    before = rows_in(a)["widgets"]
    assert follow(world.b_only("watchlist")).status_code == 400
    assert rows_in(a)["widgets"] == before
    assert follow(a.watchlist_ids[0]).status_code == 302  # the same form with A's own watchlist is accepted
    assert len(rows_in(a)["widgets"]) == len(before) + 1
