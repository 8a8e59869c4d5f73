"""Shared fixtures: the test database (public schema + template schema), plans, users, organisations."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from accounts.models import User
from billing.models import Plan
from tenants.db import activate_public_schema
from tenants.models import Organisation
from tenants.schema_template import template_schema_sync
from tenants.services import organisation_create, owner_get_or_create

PASSWORD = "correct-horse-battery-staple"


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
