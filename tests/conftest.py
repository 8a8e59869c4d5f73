"""Shared fixtures: the test database (public schema + template schema), plans, users, organisations."""

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import setup_databases, teardown_databases

from accounts.models import User
from accounts.services import owner_get_or_create
from billing.models import Plan
from tenants.db import activate_public_schema
from tenants.models import Organisation
from tenants.schema_template import template_schema_sync
from tenants.services.organisations import organisation_create

PASSWORD = "correct-horse-battery-staple"


def _hypothesis_preload() -> None:
    """Import every module of hypothesis now, while the test process has one thread.

    pytest rewrites hypothesis' modules (it is a pytest plugin) when they are first imported, and
    hypothesis imports some lazily, in the middle of a test. On CPython 3.11 the AST conversion's
    depth counter is shared by all threads (python/cpython#106905, fixed in 3.12), so a rewrite that
    overlaps a compile in another thread (the suite's servers, executors and browsers) failed a run
    with "SystemError: AST constructor recursion depth mismatch".
    """
    root = Path(hypothesis.__file__).parent
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[0] not in {"extra", "vendor"}:
            importlib.import_module(".".join(("hypothesis", *parts)).removesuffix(".__init__"))


_hypothesis_preload()


@pytest.fixture(scope="session")
def django_db_setup(
    request: pytest.FixtureRequest,
    django_test_environment: None,
    django_db_blocker: Any,
    django_db_keepdb: bool,
    django_db_createdb: bool,
    django_db_modify_db_settings: None,
) -> Iterator[None]:
    """The test database, plus the template schema new organisations are cloned from, for every run.

    pytest-django's own fixture creates the test database only when a selected test is marked
    `django_db` or uses `db`; the streaming and live tests use committed rows instead, so a file of
    them run alone would have used DATABASE_URL's own database. This one always creates it, and
    refuses to go on unless the connection then points at a test database.
    """
    verbosity = request.config.option.verbose
    with django_db_blocker.unblock():
        databases = setup_databases(
            verbosity=verbosity,
            interactive=False,
            aliases={"default"},  # type: ignore[arg-type]  # (the stubs say Mapping; Django takes any collection)
            keepdb=django_db_keepdb and not django_db_createdb,
        )
        name = str(connection.settings_dict["NAME"])
        if not name.startswith("test_"):
            pytest.exit(f"refusing to run the tests against the non-test database {name!r}", returncode=3)
        template_schema_sync()
        call_command("load_symbols", verbosity=0)
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            # Threads of asgiref's executors keep their own connections open; they are done by now.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            teardown_databases(databases, verbosity=verbosity)


@pytest.fixture(scope="session", autouse=True)
def _test_database_always(django_db_setup: None) -> None:
    """Set the test database up even when no selected test asks for it (see django_db_setup)."""


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
