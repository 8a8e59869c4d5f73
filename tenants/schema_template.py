"""The template schema new organisations are cloned from (much faster than migrating each), and the cloning."""

import hashlib
import logging
from collections.abc import Sequence
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django_tenants.clone import CLONE_SCHEMA_FUNCTION, CloneSchema
from django_tenants.models import TenantMixin
from django_tenants.postgresql_backend.base import is_valid_schema_name
from django_tenants.utils import (
    get_creation_fakes_migrations,
    get_tenant_database_alias,
    quote_schema_name,
    schema_exists,
)

from .db import activate_public_schema, tenant_connection
from .schema_script import applied_migrations, schema_replay, schema_script_ensure

logger = logging.getLogger(__name__)

CLONE_FUNCTION_SIGNATURE = "public.clone_schema(text, text, public.cloneparms[])"
# The helpers clone_schema calls, installed by the same script (pg_get_tabledef for tables whose
# columns have user-defined types).
CLONE_FUNCTION_HELPERS = ("get_insert_stmt_ddl", "pg_get_coldef", "pg_get_tabledef")
# Any constant: serialises two processes that find the function missing or outdated at once.
CLONE_FUNCTION_LOCK = 0x7464_636C_6F6E_6501

# clone_schema renames each cloned index back to its template name by joining pg_indexes to itself on
# the table name, and the planner looks the table up by name first: every schema has one of that
# name, so the join paired every organisation's indexes with every other's, deparsing each index
# (pg_get_indexdef) per pair. PL/pgSQL soon ran it with a generic plan that took the name for one row:
# at 260 organisations one clone took 15 to 90 s. Custom plans (planned for the actual names) brought
# it to 0.29 s, but the pairing still grew with organisations (a second a clone at 300). Each side is
# now narrowed to its own schema before the join (OFFSET 0 keeps the planner from merging them back).
CLONE_INDEX_PAIRS = """      FROM pg_indexes old, pg_indexes new
      WHERE old.schemaname = source_schema
        AND new.schemaname = dest_schema
        AND old.tablename = new.tablename
        AND old.tablename = tblname
"""
CLONE_INDEX_PAIRS_NARROWED = """      FROM (SELECT * FROM pg_indexes
            WHERE schemaname = source_schema AND tablename = tblname OFFSET 0) old,
           (SELECT * FROM pg_indexes
            WHERE schemaname = dest_schema AND tablename = tblname OFFSET 0) new
      WHERE old.tablename = new.tablename
"""
CLONE_INDEX_PAIRS_COUNT = 2  # in the clone with data and in the one without
CLONE_FUNCTION_PLANNING = f"""
;
ALTER FUNCTION {CLONE_FUNCTION_SIGNATURE} SET plan_cache_mode = force_custom_plan;
"""

_CLONE_FUNCTION_STATE_SQL = """
SELECT coalesce(bool_or(proname = 'clone_schema' AND obj_description(oid, 'pg_proc') = %s), false),
       count(DISTINCT proname) FILTER (WHERE proname <> 'clone_schema')
FROM pg_catalog.pg_proc
WHERE pronamespace = 'public'::regnamespace AND proname = ANY(%s)
"""
# The clone's catalog queries are planned from the catalogs' statistics, and nothing refreshes them
# where autovacuum is off. Two measured cliffs:
# - pg_namespace still held initdb's figures (4 schemas) at 417 organisations: the planner chose
#   nested loops over 3.7 million rows, and one clone took 280 s (279 s in one query); 0.33 s after
#   an ANALYZE of pg_namespace (7 ms);
# - pg_class, pg_attribute, pg_index and the others go stale the same way, more slowly: with
#   autovacuum off sign-up grew from 0.3 s to 2.65 s over 1,000 organisations, where autovacuum on
#   kept it at 0.37 s (bench.tenant_scale).
# So the clone refreshes a catalog's statistics when autovacuum itself would have: once its rows
# changed since the last ANALYZE by more than 50 + 10 % (autovacuum's default analyze threshold), or
# for pg_namespace once it holds that many more schemas than its statistics say.
CLONE_CATALOGS = ("pg_namespace", "pg_class", "pg_attribute", "pg_attrdef", "pg_index", "pg_constraint",
                  "pg_depend", "pg_type", "pg_sequence", "pg_description")  # fmt: skip
_CATALOG_STATISTICS_STALE_SQL = """
SELECT c.relname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_stat_sys_tables s ON s.relid = c.oid
WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relname = ANY(%s)
  AND (c.reltuples < 0
       OR s.n_mod_since_analyze > 50 + 0.1 * c.reltuples
       OR (c.relname = 'pg_namespace'
           AND (SELECT count(*) FROM pg_catalog.pg_namespace) > 50 + 1.1 * c.reltuples))
ORDER BY c.relname
"""


# Unique and exclusion constraints of the clone whose names differ from the template's same constraint
# (same table, same kind, same definition).
_CONSTRAINT_RENAMES_SQL = """
SELECT DISTINCT ON (new_table.relname, new_con.conname) new_table.relname, new_con.conname, old_con.conname
FROM pg_catalog.pg_namespace old_ns
JOIN pg_catalog.pg_class old_table ON old_table.relnamespace = old_ns.oid
JOIN pg_catalog.pg_constraint old_con ON old_con.conrelid = old_table.oid AND old_con.contype IN ('u', 'x')
JOIN pg_catalog.pg_namespace new_ns ON new_ns.nspname = %(clone)s
JOIN pg_catalog.pg_class new_table ON new_table.relnamespace = new_ns.oid AND new_table.relname = old_table.relname
JOIN pg_catalog.pg_constraint new_con ON new_con.conrelid = new_table.oid AND new_con.contype = old_con.contype
     AND pg_catalog.pg_get_constraintdef(new_con.oid) = pg_catalog.pg_get_constraintdef(old_con.oid)
WHERE old_ns.nspname = %(template)s AND new_con.conname <> old_con.conname
ORDER BY new_table.relname, new_con.conname, old_con.conname
"""


def template_schema_sync(*, verbosity: int = 0) -> str:
    """Create the template schema when missing, bring it up to date with the tenant migrations, install clone_schema."""
    name: str = settings.TENANT_BASE_SCHEMA
    with tenant_connection().cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_schema_name(name)}")
    try:
        call_command("migrate_schemas", tenant=True, schema_name=name, interactive=False, verbosity=verbosity)
    finally:
        activate_public_schema()
    clone_function_ensure()
    catalog_statistics_refresh()
    schema_script_ensure(name)  # the SQL sign-ups make schemas from (pg_dump): captured at deploy time
    return name


class InstalledCloneSchema(CloneSchema):
    """django-tenants' clone, re-creating its functions and types only when missing or outdated, not on every call."""

    # The one step overridden: clone_schema itself (public schema first, the case-insensitive name
    # clash check, the SELECT) stays django-tenants' own.
    def _create_clone_schema_function(self) -> None:
        clone_function_ensure()


def tenant_schema_clone(*, tenant: TenantMixin, check_if_exists: bool, verbosity: int) -> bool:
    """Make the tenant's schema from its base schema: replayed from its SQL, else cloned as django-tenants does.

    The replayed schema carries the template's applied migrations with it; the clone fakes them.

    False, having done nothing, when there is no base schema to clone from or when check_if_exists
    and the schema exists: TenantMixin.create_schema then does what it does for those.
    """
    name = tenant.schema_name
    base_schema = tenant.get_base_schema() if get_creation_fakes_migrations() else None
    if not base_schema or not schema_exists(base_schema):
        return False
    if check_if_exists and schema_exists(name):
        return False
    if not is_valid_schema_name(name):
        raise ValidationError("Invalid string used for the schema name.")
    if schema_replay(template=base_schema, name=name):
        return True
    catalog_statistics_refresh()
    InstalledCloneSchema().clone_schema(base_schema, name, tenant.clone_mode)
    constraint_names_restore(base_schema, name)
    call_command("migrate_schemas", tenant=True, fake=True, schema_name=name, interactive=False, verbosity=verbosity)
    activate_public_schema()
    return True


# Each schema's count of the template's migrations, BEHIND_BATCH schemas a query.
BEHIND_BATCH = 500
_APPLIED_COUNT_PART = (
    "SELECT %(s{index})s, count(*) FROM {schema}.django_migrations WHERE app || '.' || name = ANY(%(wanted)s)"
)


def schemas_behind(template: str, schemas: Sequence[str]) -> list[str]:
    """The schemas (of `schemas`, in order) that lack a migration applied to the template.

    A batch whose query fails (a schema missing, or without django_migrations) counts as behind as a
    whole: migrate_schemas then deals with each as it always has.
    """
    wanted = applied_migrations(template)
    connection = tenant_connection()
    behind: list[str] = []
    for start in range(0, len(schemas), BEHIND_BATCH):
        batch = list(schemas[start : start + BEHIND_BATCH])
        parts = [
            _APPLIED_COUNT_PART.format(index=index, schema=quote_schema_name(name)) for index, name in enumerate(batch)
        ]
        params: dict[str, object] = {"wanted": wanted, **{f"s{index}": name for index, name in enumerate(batch)}}
        try:
            with transaction.atomic(using=get_tenant_database_alias()), connection.cursor() as cursor:
                cursor.execute(" UNION ALL ".join(parts), params)
                counts = dict(cursor.fetchall())
        except DatabaseError:
            behind.extend(batch)
            continue
        behind.extend(name for name in batch if counts.get(name, 0) < len(wanted))
    return behind


def constraint_names_restore(template: str, clone: str) -> int:
    """Give the clone's unique and exclusion constraints their template names; returns how many it renamed.

    clone_schema copies tables with LIKE … INCLUDING ALL, which names such constraints afresh
    (`<table>_<columns>_key`), and renames only plain indexes back. A later migration that drops or
    alters a named constraint (RemoveConstraint: `DROP CONSTRAINT webhook_delivery_unique_attempt`)
    would then fail on every organisation's schema.
    """
    connection = tenant_connection()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(_CONSTRAINT_RENAMES_SQL, {"template": template, "clone": clone})
        renames = cursor.fetchall()
        for table, current, wanted in renames:
            table_name = f"{quote_schema_name(clone)}.{quote(table)}"
            cursor.execute(f"ALTER TABLE {table_name} RENAME CONSTRAINT {quote(current)} TO {quote(wanted)}")
    return len(renames)


def clone_function_ensure() -> bool:
    """Install django-tenants' clone_schema functions unless the installed ones are current; True if it installed."""
    if clone_function_is_current():
        return False
    with transaction.atomic(using=get_tenant_database_alias()):
        with tenant_connection().cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLONE_FUNCTION_LOCK])
        if clone_function_is_current():  # another process installed it while this one waited
            return False
        clone_function_install()
    return True


def clone_function_is_current() -> bool:
    """Whether clone_schema carries this django-tenants script's fingerprint and its helpers exist (one query)."""
    _, marker = _clone_function_script(_database_user())
    with tenant_connection().cursor() as cursor:
        cursor.execute(_CLONE_FUNCTION_STATE_SQL, [marker, ["clone_schema", *CLONE_FUNCTION_HELPERS]])
        current, helpers = cursor.fetchone()
    return bool(current) and helpers == len(CLONE_FUNCTION_HELPERS)


def clone_function_install() -> None:
    """Run django-tenants' clone function script (drops and re-creates its types and functions), then mark it."""
    script, marker = _clone_function_script(_database_user())
    with tenant_connection().cursor() as cursor:
        cursor.execute(script)
        # The marker is hex digits and fixed words: no quoting needed, and COMMENT takes no parameters.
        cursor.execute(f"COMMENT ON FUNCTION {CLONE_FUNCTION_SIGNATURE} IS '{marker}'")
    logger.info("clone_schema function installed (%s)", marker)


def catalog_statistics_refresh() -> list[str]:
    """ANALYZE the catalogs the clone reads whose statistics are out of date (CLONE_CATALOGS); which it did.

    A few milliseconds each, and rare: once a catalog grew by a tenth. Needs the database owner or a
    superuser; for any other role PostgreSQL skips it with a warning.
    """
    with tenant_connection().cursor() as cursor:
        cursor.execute("SELECT pg_catalog.pg_stat_clear_snapshot()")  # this transaction may have read them before
        cursor.execute(_CATALOG_STATISTICS_STALE_SQL, [list(CLONE_CATALOGS)])
        stale = [name for (name,) in cursor.fetchall()]
        for name in stale:
            cursor.execute(f"ANALYZE pg_catalog.{name}")  # a name of CLONE_CATALOGS, from the catalog itself
    return stale


def _database_user() -> str:
    # The owner CloneSchema._create_clone_schema_function gives the functions (it reads "default").
    user: str = settings.DATABASES[get_tenant_database_alias()].get("USER") or "postgres"
    return user


@cache
def _clone_function_script(database_user: str) -> tuple[str, str]:
    """django-tenants' script for this owner, with our planner setting, and the comment naming it (its sha256)."""
    script = CLONE_SCHEMA_FUNCTION.format(db_user=database_user)
    if script.count(CLONE_INDEX_PAIRS) != CLONE_INDEX_PAIRS_COUNT:
        raise ImproperlyConfigured(
            "django-tenants' clone_schema no longer has the index-renaming query tenants/schema_template.py "
            "narrows: see CLONE_INDEX_PAIRS, and measure sign-up at scale (python -m bench.tenant_scale)"
        )
    script = script.replace(CLONE_INDEX_PAIRS, CLONE_INDEX_PAIRS_NARROWED) + CLONE_FUNCTION_PLANNING
    digest = hashlib.sha256(script.encode()).hexdigest()
    return script, f"django-tenants clone_schema sha256 {digest}"
