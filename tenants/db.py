"""The one place that switches the connection's PostgreSQL schema (django-tenants' connection)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from django.db import connection
from django_tenants.postgresql_backend.base import DatabaseWrapper
from django_tenants.utils import get_public_schema_name, schema_context


def tenant_connection() -> DatabaseWrapper:
    return cast(DatabaseWrapper, connection)


def require_schema(schema_name: str, *, what: str) -> None:
    """Fail closed: a write meant for one organisation must never land in another's schema."""
    current = tenant_connection().schema_name
    if current != schema_name:
        raise RuntimeError(f"{what} write for {schema_name} while the connection is on {current}")


def activate_public_schema() -> None:
    """Point this thread's connection at the public schema (organisations, users, plans)."""
    tenant_connection().set_schema_to_public()


def activate_schema(schema_name: str) -> None:
    """Point this thread's connection at one organisation's schema (public stays on the search path)."""
    tenant_connection().set_schema(schema_name)


@contextmanager
def public_schema() -> Iterator[None]:
    """Run a block on the public schema, then put the connection back on the schema it was on."""
    with schema_context(get_public_schema_name()):
        yield
