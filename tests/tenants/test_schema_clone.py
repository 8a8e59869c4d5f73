"""Without pg_dump, new organisations are cloned through a clone_schema function installed once, not per clone."""

import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django_tenants.clone import CloneSchema
from django_tenants.utils import schema_context

from tenants.models import Organisation
from tenants.schema_template import (
    CLONE_FUNCTION_SIGNATURE,
    catalog_statistics_refresh,
    clone_function_ensure,
    clone_function_is_current,
    template_schema_sync,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("without_pg_dump")]

TEMPLATE = "tenant_template"


def fetch_one(sql: str, params: list[Any] | None = None) -> tuple[Any, ...]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None
    return tuple(row)


def clone_catalog_rows() -> tuple[Any, ...]:
    """clone_schema's pg_proc row (oid, xmin), the two enum types' oids and their pg_enum rows' oids."""
    return fetch_one(
        """
        SELECT p.oid, p.xmin::text,
               'public.cloneparms'::regtype::oid, 'public.tabledefs'::regtype::oid,
               ARRAY(SELECT e.oid FROM pg_enum e
                     WHERE e.enumtypid IN ('public.cloneparms'::regtype, 'public.tabledefs'::regtype)
                     ORDER BY e.oid)
        FROM pg_proc p WHERE p.oid = %s::regprocedure
        """,
        [CLONE_FUNCTION_SIGNATURE],
    )


def tables_of(schema: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", [schema])
        return [row[0] for row in cursor.fetchall()]


def migrations_of(schema: str) -> int:
    with schema_context(schema):
        return MigrationRecorder(connection).migration_qs.count()


def namespace_rows() -> tuple[int, float]:
    """(schemas there are, schemas the planner believes there are)."""
    row = fetch_one(
        "SELECT (SELECT count(*) FROM pg_namespace), reltuples FROM pg_class WHERE oid = 'pg_namespace'::regclass"
    )
    return int(row[0]), float(row[1])


def test_organisations_created_in_a_row_reuse_the_installed_clone_function(
    make_organisation: Callable[..., Organisation],
) -> None:
    clone_function_ensure()
    before = clone_catalog_rows()
    enum_rows = len(before[4])

    organisations = [make_organisation(slug) for slug in ("clone-one", "clone-two", "clone-three")]

    assert clone_catalog_rows() == before, "clone_schema and its enum types were dropped and re-created"
    assert enum_rows == 21  # cloneparms' 9 labels and tabledefs' 12
    template_tables = tables_of(TEMPLATE)
    for organisation in organisations:
        assert tables_of(organisation.schema_name) == template_tables
        assert migrations_of(organisation.schema_name) == migrations_of(TEMPLATE)


def test_django_tenants_own_clone_re_creates_the_function_each_time() -> None:
    """What the test above guards against: django-tenants' CloneSchema on its own replaces clone_schema."""
    clone_function_ensure()
    before = clone_catalog_rows()

    CloneSchema().clone_schema(TEMPLATE, "org_upstream_clone")

    after = clone_catalog_rows()
    assert after[0] != before[0], "new clone_schema oid"
    assert after[2] != before[2], "new cloneparms type"
    assert not clone_function_is_current(), "its copy has no fingerprint, so the next clone installs ours again"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(f"DROP FUNCTION {CLONE_FUNCTION_SIGNATURE}", id="clone_schema-missing"),
        pytest.param("DROP TYPE public.cloneparms CASCADE", id="cloneparms-type-missing"),
        pytest.param(
            "DROP FUNCTION public.pg_get_tabledef(varchar, varchar, boolean, public.tabledefs[])", id="helper-missing"
        ),
        pytest.param(f"COMMENT ON FUNCTION {CLONE_FUNCTION_SIGNATURE} IS NULL", id="installed-without-fingerprint"),
        pytest.param(
            f"COMMENT ON FUNCTION {CLONE_FUNCTION_SIGNATURE} IS 'django-tenants clone_schema sha256 {'0' * 64}'",
            id="older-script",
        ),
    ],
)
def test_a_missing_or_outdated_clone_function_is_installed_at_clone_time(
    damage: str, make_organisation: Callable[..., Organisation]
) -> None:
    clone_function_ensure()
    with connection.cursor() as cursor:
        cursor.execute(damage)
    assert not clone_function_is_current()

    organisation = make_organisation("clone-repaired")

    assert clone_function_is_current()
    assert tables_of(organisation.schema_name) == tables_of(TEMPLATE)


def test_a_clone_refreshes_the_planners_schema_count_once_schemas_outgrow_it(
    make_organisation: Callable[..., Organisation],
) -> None:
    catalog_statistics_refresh()
    with connection.cursor() as cursor:
        for index in range(80):
            cursor.execute(f"CREATE SCHEMA stats_probe_{index}")
    schemas, believed = namespace_rows()
    assert schemas > 50 + 1.1 * believed, "precondition: statistics out of date"

    make_organisation("stats-refresh")

    assert namespace_rows()[1] == schemas, "analysed before the clone"
    assert "pg_namespace" not in catalog_statistics_refresh()


def test_clone_function_ensure_installs_only_when_needed() -> None:
    clone_function_ensure()
    before = clone_catalog_rows()

    assert clone_function_ensure() is False
    assert clone_catalog_rows() == before

    with connection.cursor() as cursor:
        cursor.execute(f"COMMENT ON FUNCTION {CLONE_FUNCTION_SIGNATURE} IS NULL")
    assert clone_function_ensure() is True
    assert clone_catalog_rows()[0] != before[0]
    assert clone_function_is_current()


def test_template_schema_sync_installs_the_clone_function() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TYPE public.cloneparms CASCADE")
    assert not clone_function_is_current()

    assert template_schema_sync() == TEMPLATE

    assert clone_function_is_current()


def test_the_clone_function_plans_each_query_for_its_actual_names() -> None:
    """With generic plans, its index-renaming join went quadratic in the number of schemas (15-90 s a clone
    at 260 organisations; `python -m bench.tenant_scale` measures it)."""
    clone_function_ensure()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proconfig FROM pg_catalog.pg_proc WHERE oid = %s::regprocedure", [CLONE_FUNCTION_SIGNATURE]
        )
        (config,) = cursor.fetchone()
    assert config == ["plan_cache_mode=force_custom_plan"]


def test_a_clone_keeps_the_template_s_index_names(make_organisation: Callable[..., Organisation]) -> None:
    """The narrowed index-renaming query (CLONE_INDEX_PAIRS_NARROWED) still renames every index back."""
    organisation = make_organisation("clone-indexes")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT schemaname, tablename, indexname FROM pg_catalog.pg_indexes WHERE schemaname IN (%s, %s)",
            [TEMPLATE, organisation.schema_name],
        )
        rows = cursor.fetchall()
    template = {(table, index) for schema, table, index in rows if schema == TEMPLATE}
    cloned = {(table, index) for schema, table, index in rows if schema == organisation.schema_name}
    assert template
    assert cloned == template


def test_a_schema_cloned_before_keeps_its_constraint_under_the_model_s_name_after_migrating(
    make_organisation: Callable[..., Organisation],
) -> None:
    organisation = make_organisation("clone-constraint-old")
    table = f'"{organisation.schema_name}".alerts_webhookdelivery'
    with connection.cursor() as cursor:  # as the clone left it before constraint_names_restore
        cursor.execute(
            f"ALTER TABLE {table} RENAME CONSTRAINT webhook_delivery_unique_attempt "
            "TO alerts_webhookdelivery_event_id_attempt_key"
        )
        cursor.execute(
            f'DELETE FROM "{organisation.schema_name}".django_migrations '  # noqa: S608 (the test's own schema name)
            "WHERE app = 'alerts' AND name = '0002_webhook_delivery_constraint_name'"
        )
    call_command("migrate_schemas", tenant=True, schema_name=organisation.schema_name, interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_catalog.pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'", [table]
        )
        assert [name for (name,) in cursor.fetchall()] == ["webhook_delivery_unique_attempt"]


def changes_counted(*, minimum: int) -> None:
    """Wait until the statistics count another connection's pg_class changes (it reports them when idle)."""
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT n_mod_since_analyze FROM pg_stat_sys_tables WHERE relname = 'pg_class'")
            (changes,) = cursor.fetchone()
            if changes >= minimum:
                return
            assert time.monotonic() < deadline, f"pg_class changes counted: {changes}"
            time.sleep(0.05)


def test_a_clone_refreshes_catalog_statistics_that_autovacuum_would_have(
    make_organisation: Callable[..., Organisation],
) -> None:
    """With autovacuum off (as on the machine these were measured on), sign-up grew from 0.3 to 2.65 s over
    1,000 organisations on stale pg_class/pg_attribute/… statistics; autovacuum on kept it flat."""
    catalog_statistics_refresh()
    # Committed elsewhere: a catalog's change counts reach the statistics when its transaction ends.
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("CREATE SCHEMA stats_tables")
        for index in range(60):  # rows in pg_class, pg_attribute, pg_type, pg_depend
            other.execute(f"CREATE TABLE stats_tables.t{index} (a int, b text)")
        other.execute("SELECT pg_stat_force_next_flush()")  # when that backend goes idle, not at its exit
    changes_counted(minimum=60)
    try:
        stale_before = catalog_statistics_refresh()
        assert {"pg_class", "pg_attribute"} <= set(stale_before), stale_before
        assert catalog_statistics_refresh() == [], "analysed: nothing is stale any more"
        make_organisation("stats-tables")  # the clone checks too, and finds little to do
    finally:
        with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
            other.execute("DROP SCHEMA stats_tables CASCADE")
