"""New organisations' schemas replayed from the template's SQL, written once by pg_dump.

django-tenants' clone_schema (tenants.schema_template) reads the catalogs for every table, index,
sequence and column default it copies, and those reads scan every organisation's relations of the
same name: sign-up grew by about 0.3 ms per organisation (roughly 3 s at 10,000). pg_dump, the tool
PostgreSQL ships to reproduce a schema, writes the template's schema as SQL (tables, identity
columns, constraints and indexes under their own names, and its rows: applied migrations and
content types) once per version of the template; each sign-up runs that SQL under its own schema
name. The work is the same at 10 organisations or 10,000.

A version of the template is the set of migrations applied to it (its fingerprint). `manage.py
bootstrap` migrates the template and captures its script (template_schema_sync), stored in the
public schema (SchemaScript) for every process. pg_dump reads the whole catalog, so a capture takes
longer as organisations accumulate (13 s at 10,000): it happens at deploy time, never in a sign-up.
A sign-up that finds no script for the template as it is now (pg_dump missing or refusing, or a
deploy that migrated without bootstrap) clones as before, and says so in the log once per process.
"""

import hashlib
import logging
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import sqlparse
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django_tenants.utils import get_tenant_database_alias, quote_schema_name
from psycopg import pq
from psycopg.conninfo import make_conninfo

from .db import tenant_connection
from .models import SchemaScript

logger = logging.getLogger(__name__)

# Stands for the new schema's quoted name in a stored script. Organisations' schema names are
# `org_` and a slug (SCHEMA_NAME), which cannot contain it.
SCHEMA_PLACEHOLDER = "@@schema@@"
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Part of the fingerprint: scripts written by an older version of replay_script are captured again.
SCRIPT_FORMAT = 2
PG_DUMP_TIMEOUT_SECONDS = 600
PG_DUMP_LOCK_WAIT = "30s"  # pg_dump waits no longer for a table lock (a migration under way) than this
# pg_dump's query for materialised views' dependencies joins pg_depend to itself; as views become a
# tiny share of pg_class the planner expects one row and chooses nested loops over all of pg_depend:
# 171 s of a 181 s dump at 10,000 organisations. Without nested loops it took 0.4 s (13.5 s in all,
# the same output).
PG_DUMP_SESSION_OPTIONS = "-c enable_nestloop=off"
# pg_dump's session settings (for restoring into a fresh session) are left out: every name in the
# script is qualified, and the replay runs on a connection that goes on serving the request.
_SESSION_SETTING = re.compile(r"(SET\s+\w+\s*(=|TO)|SELECT pg_catalog\.set_config\()", re.I)
_REFUSED_STATEMENT = re.compile(r"(RESET|SET|SHOW|DISCARD|BEGIN|COMMIT|ROLLBACK|START|\\)\b", re.I)

_APPLIED_SQL = "SELECT app, name FROM {schema}.django_migrations ORDER BY app, name"

_scripts: dict[tuple[str, str], str] = {}  # (template, fingerprint) → script, this process's copy
_fallback_logged: set[tuple[str, str]] = set()


class ScriptError(Exception):
    """pg_dump could not write a usable script for the template (missing, too old, or unexpected output)."""


def schema_replay(*, template: str, name: str) -> bool:
    """Create schema `name` from the template's script; False, having done nothing, when there is none.

    Runs in the caller's transaction (a failure later in sign-up rolls the schema back with everything
    else), in a savepoint of its own: a stored script that fails is forgotten and False returned, so
    the clone makes the schema instead.
    """
    if not SCHEMA_NAME.fullmatch(name):
        raise ValueError(f"not an organisation's schema name: {name!r}")
    script = schema_script_current(template)
    if script is None:
        return False
    try:
        with transaction.atomic(using=get_tenant_database_alias()), tenant_connection().cursor() as cursor:
            cursor.execute(script.replace(SCHEMA_PLACEHOLDER, quote_schema_name(name)))
    except DatabaseError:
        logger.exception("the stored SQL of schema %s failed: it is dropped, and this schema cloned", template)
        SchemaScript.objects.filter(template=template).delete()
        forget()
        return False
    return True


def schema_script_current(template: str) -> str | None:
    """The stored script for the template as it is now (this process's copy of it), else None."""
    fingerprint = template_fingerprint(template)
    key = (template, fingerprint)
    if key in _scripts:
        return _scripts[key]
    stored = SchemaScript.objects.filter(template=template, fingerprint=fingerprint).values_list("script", flat=True)
    script = stored.first()
    if script is None:
        if key not in _fallback_logged:
            _fallback_logged.add(key)
            logger.warning("no SQL of schema %s as migrated now: new organisations are cloned with clone_schema "
                           "(slower at scale) until `manage.py bootstrap` captures it", template)  # fmt: skip
        return None
    _scripts[key] = script
    return script


def schema_script_ensure(template: str) -> bool:
    """Capture the template's script unless the current one is stored (deploy time); whether there is one now."""
    fingerprint = template_fingerprint(template)
    if SchemaScript.objects.filter(template=template, fingerprint=fingerprint).exists():
        return True
    try:
        schema_script_capture(template, fingerprint)
    except ScriptError as exc:
        logger.warning("new organisations will be cloned with clone_schema (slower at scale): %s", exc)
        return False
    return True


def forget() -> None:
    """Drop this process's copies of the scripts (read again from the database) and its logged fallbacks."""
    _scripts.clear()
    _fallback_logged.clear()


def template_fingerprint(template: str) -> str:
    """sha256 of the migrations applied to the template (app and name, sorted) and SCRIPT_FORMAT: its version."""
    lines = [f"format {SCRIPT_FORMAT}", *applied_migrations(template)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def applied_migrations(schema: str) -> list[str]:
    """`app.name` of every migration recorded in the schema's django_migrations, sorted."""
    with tenant_connection().cursor() as cursor:
        cursor.execute(_APPLIED_SQL.format(schema=quote_schema_name(schema)))
        return [f"{app}.{name}" for app, name in cursor.fetchall()]


def schema_script_capture(template: str, fingerprint: str) -> str:
    """Run pg_dump on the template, store the script under its fingerprint (replacing older ones); the script."""
    script = replay_script(pg_dump_schema(template), template)
    alias = get_tenant_database_alias()
    try:
        with transaction.atomic(using=alias):
            SchemaScript.objects.using(alias).filter(template=template).exclude(fingerprint=fingerprint).delete()
            SchemaScript.objects.using(alias).create(template=template, fingerprint=fingerprint, script=script)
    except IntegrityError:
        pass  # another process stored the same capture first
    statements = script.count(";\n")
    logger.info("captured the SQL of schema %s (%d statements, %s)", template, statements, fingerprint[:12])
    return script


def replay_script(dump: str, template: str) -> str:
    """pg_dump's output as a script for any schema name: settings, comments and psql's meta-commands left out.

    Statements are split by sqlparse (string literals, quoted names and dollar quotes kept whole).
    The template's name becomes SCHEMA_PLACEHOLDER in DDL and in each INSERT's target, never in row
    data. Raises ScriptError when the output holds anything else that would touch the session, or
    the template's name where it was not replaced (every sign-up would then write to it).
    """
    name = re.escape(template)
    qualified = re.compile(rf'(?<![\w"$]){name}\.')
    statements: list[str] = []
    for chunk in sqlparse.split(dump):
        statement = _without_leading_meta(chunk)
        if not statement or _SESSION_SETTING.match(statement):
            continue
        if _REFUSED_STATEMENT.match(statement):
            raise ScriptError(f"pg_dump's output holds a statement a replay must not run: {statement[:80]!r}")
        if statement.startswith("INSERT INTO "):
            statement = qualified.sub(f"{SCHEMA_PLACEHOLDER}.", statement, count=1)
        elif statement == f"CREATE SCHEMA {template};":
            statement = f"CREATE SCHEMA {SCHEMA_PLACEHOLDER};"
        else:
            statement = qualified.sub(f"{SCHEMA_PLACEHOLDER}.", statement)
        statements.append(statement)
    created = statements.count(f"CREATE SCHEMA {SCHEMA_PLACEHOLDER};")
    if created != 1:
        raise ScriptError(f"pg_dump's output has {created} CREATE SCHEMA {template} statements, not one")
    script = "\n".join(statements) + "\n"
    if re.search(rf"(?<![\w$]){name}(?![\w$])", script):
        raise ScriptError(f"pg_dump's output names {template} where a schema-qualified name was not expected")
    return script


def _without_leading_meta(chunk: str) -> str:
    """A statement without the blank, comment and psql meta-command (\\restrict …) lines pg_dump puts before it."""
    lines = chunk.strip().splitlines()
    while lines and (not lines[0].strip() or lines[0].startswith(("--", "\\"))):
        lines.pop(0)
    return "\n".join(lines).strip()


def pg_dump_schema(template: str) -> str:
    """pg_dump's plain SQL for one schema of the tenant database (no owners, no grants, rows as INSERTs)."""
    executable = pg_dump_executable()
    params = tenant_connection().get_connection_params()
    conninfo = {key: value for key, value in params.items() if key in _libpq_keywords() and value not in (None, "")}
    password = conninfo.pop("password", None)  # in the environment, not on a command line others can read
    options = f"{os.environ.get('PGOPTIONS', '')} {PG_DUMP_SESSION_OPTIONS}".strip()
    environment = {**os.environ, "PGOPTIONS": options, **({"PGPASSWORD": str(password)} if password else {})}
    role = settings.DATABASES[get_tenant_database_alias()].get("OPTIONS", {}).get("assume_role")
    command = [executable, "--inserts", "--no-owner", "--no-privileges", "--no-comments", f"--schema={template}",
               f"--lock-wait-timeout={PG_DUMP_LOCK_WAIT}", *([f"--role={role}"] if role else []),
               f"--dbname={make_conninfo(**conninfo)}"]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, encoding="utf-8", env=environment, timeout=PG_DUMP_TIMEOUT_SECONDS,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ScriptError(f"{executable} could not run: {exc}") from exc
    if done.returncode != 0:
        raise ScriptError(f"{executable} exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout


def pg_dump_executable() -> str:
    """PG_DUMP when set, else pg_dump on PATH, else the embedded server's own (pgserver); ScriptError if none."""
    configured: str = getattr(settings, "PG_DUMP", "")
    if configured:
        return configured
    found = shutil.which("pg_dump")
    if found:
        return found
    try:
        import pgserver  # the embedded server of development and tests ships its pg_dump

        embedded = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump"
    except ImportError:
        embedded = None
    if embedded is not None and embedded.exists():
        return str(embedded)
    raise ScriptError("no pg_dump: install PostgreSQL's client tools (same major version as the server or newer)")


@cache
def _libpq_keywords() -> frozenset[str]:
    """The connection keywords libpq knows (Django's parameters also carry psycopg's own, not for pg_dump)."""
    return frozenset(option.keyword.decode() for option in pq.Conninfo.get_defaults())
