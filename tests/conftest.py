"""Shared fixtures: the test database (public schema + template schema), plans, users, organisations."""

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_tenants.signals import schema_migrated

from accounts.models import User
from billing.models import Plan
from tenants.db import activate_public_schema, connection_discard
from tenants.models import Organisation
from tenants.schema_template import template_schema_sync
from tenants.services import organisation_create, owner_get_or_create

PASSWORD = "correct-horse-battery-staple"

# Creating an organisation leaves ~10 MB of compiled clone_schema functions in the PostgreSQL
# backend that slows every later catalog change (tenants.db.connection_discard says why);
# organisation_create discards its connection after commit, but tests roll back instead. So a
# thread's connection is discarded, outside any transaction, once it has cloned a few schemas:
# one connection went from 0.19 s to 2.5 s per clone after 150; 4-8 clones per connection measured fastest.
CLONES_PER_CONNECTION = 6
_clones = threading.local()  # like Django's connections: one count per thread


def _count_clone(sender: object, **kwargs: Any) -> None:
    """schema_migrated is sent once per organisation schema created (clone + fake migrations)."""
    _clones.count = getattr(_clones, "count", 0) + 1


schema_migrated.connect(_count_clone, dispatch_uid="tests.count_clone")


def connection_recycle() -> None:
    """Close this thread's connection if it has cloned CLONES_PER_CONNECTION schemas and no transaction is open."""
    if getattr(_clones, "count", 0) >= CLONES_PER_CONNECTION and not connection.in_atomic_block:
        connection_discard()
        _clones.count = 0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """The main thread's connection, after the test's fixtures (and its rollback) are done."""
    yield
    connection_recycle()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> None:
    """pytest-django's test database, plus the template schema new organisations are cloned from."""
    with django_db_blocker.unblock():
        template_schema_sync()
        call_command("load_symbols", verbosity=0)


@pytest.fixture(autouse=True)
def _public_schema_between_tests() -> Iterator[None]:
    """A request leaves the connection in its tenant's schema; every test starts and ends on public."""
    activate_public_schema()
    cache.clear()
    yield
    activate_public_schema()


@pytest.fixture
def plans(db: None) -> dict[str, Plan]:
    """The seeded plans by slug."""
    return {plan.slug: plan for plan in Plan.objects.all()}


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    def make(email: str, password: str = PASSWORD) -> User:
        return owner_get_or_create(email=email, password=password)

    return make


@pytest.fixture
def make_organisation(db: None, make_user: Callable[..., User]) -> Callable[..., Organisation]:
    """Create an organisation (real schema, cloned from the template) with an owner."""

    def make(slug: str, *, plan: str = "free", owner: User | None = None, name: str | None = None) -> Organisation:
        owner = owner or make_user(f"owner@{slug}.example")
        return organisation_create(name=name or slug.title(), slug=slug, owner=owner, plan=Plan.objects.get(slug=plan))

    return make


def host_client(host: str) -> Client:
    """A test client whose every request goes to `host` (one cookie jar per host, as in a browser)."""
    return Client(HTTP_HOST=host)


@pytest.fixture
def public_client() -> Client:
    return host_client("localhost")
