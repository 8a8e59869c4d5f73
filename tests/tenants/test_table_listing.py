"""The backend lists a schema's tables through pg_depend's index, as Django's own scan of pg_class would."""

from collections.abc import Callable

import pytest
from django.db import connection
from django.db.backends.postgresql.introspection import DatabaseIntrospection
from django_tenants.utils import schema_context

from tenants.models import Organisation
from tenants.postgresql_backend.base import OrganisationSchemaIntrospection

pytestmark = pytest.mark.django_db


def listings() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(this backend's list, Django's own scan of every relation) on the connection's current schema."""
    with connection.cursor() as cursor:
        ours = connection.introspection.get_table_list(cursor)
        cursor.execute("SET search_path = " + connection.schema_name)  # type: ignore[attr-defined]
        try:
            django_s = DatabaseIntrospection.get_table_list(connection.introspection, cursor)
        finally:
            cursor.execute("SET search_path = " + ", ".join(connection.search_path_set_schemas or ["public"]))  # type: ignore[attr-defined]
    return sorted((t.name, t.type) for t in ours), sorted((t.name, t.type) for t in django_s)


def test_the_backend_s_introspection_is_the_fast_listing() -> None:
    assert isinstance(connection.introspection, OrganisationSchemaIntrospection)


def test_an_organisation_s_tables_views_and_partitions_are_listed_as_django_lists_them(
    make_organisation: Callable[..., Organisation],
) -> None:
    organisation = make_organisation("listed")
    make_organisation("listed-other")  # same-named tables in another schema: not listed
    with schema_context(organisation.schema_name), connection.cursor() as cursor:
        cursor.execute("CREATE VIEW recent_watchlists AS SELECT id FROM watchlists_watchlist")
        cursor.execute("CREATE TABLE measured (ts bigint) PARTITION BY RANGE (ts)")
        cursor.execute("CREATE TABLE measured_1 PARTITION OF measured FOR VALUES FROM (0) TO (10)")
        cursor.execute("CREATE TEMPORARY TABLE scratch_rows (id int)")

        ours, django_s = listings()

    assert ours == django_s
    names = {name for name, _ in ours}
    assert {"watchlists_watchlist", "django_migrations", "recent_watchlists", "measured", "scratch_rows"} <= names
    assert ("measured_1", "p") in ours
    assert "tenants_organisation" not in names, "the public schema is not on an organisation's listing"


def test_the_public_schema_is_listed_as_django_lists_it() -> None:
    ours, django_s = listings()

    assert ours == django_s
    assert {"tenants_organisation", "django_migrations", "auth_permission"} <= {name for name, _ in ours}
