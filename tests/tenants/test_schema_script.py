"""New organisations' schemas are replayed from the template's SQL (pg_dump, captured once per template version)."""

import json
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django_tenants.clone import CloneSchema
from psycopg.conninfo import conninfo_to_dict
from pytest_django.fixtures import Settings

from tenants import schema_script
from tenants.db import tenant_connection
from tenants.models import Organisation, SchemaScript
from tenants.schema_script import SCHEMA_PLACEHOLDER, ScriptError, replay_script, template_fingerprint
from tenants.schema_template import template_schema_sync

pytestmark = pytest.mark.django_db

TEMPLATE = "tenant_template"

# Each query describes one kind of object of schema %(schema)s, the schema's own name written as "S".
CATALOG_QUERIES = {
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
               replace(coalesce(pg_get_expr(d.adbin, d.adrelid), ''), %(schema)s || '.', 'S.')
        FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind = 'r'""",
    "constraints": """
        SELECT c.relname, k.conname, k.contype, replace(pg_get_constraintdef(k.oid), %(schema)s || '.', 'S.'),
               k.condeferrable, k.condeferred
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        WHERE c.relnamespace = %(schema)s::regnamespace""",
    "indexes": """
        SELECT tablename, indexname, replace(indexdef, %(schema)s || '.', 'S.')
        FROM pg_indexes WHERE schemaname = %(schema)s""",
    "sequences": """
        SELECT s.sequencename, s.data_type::text, s.start_value, s.increment_by, s.last_value,
               split_part(pg_get_serial_sequence(%(schema)s || '.' || split_part(s.sequencename, '_id_seq', 1), 'id'),
                          '.', 1) = %(schema)s
        FROM pg_sequences s WHERE s.schemaname = %(schema)s""",
    "migrations": "SELECT app, name FROM {schema}.django_migrations",
    "content types": "SELECT id, app_label, model FROM {schema}.django_content_type",
}


def catalog_of(schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's columns, constraints, indexes, sequences and rows of schema, in a comparable form."""
    described = {}
    with connection.cursor() as cursor:
        for kind, sql in CATALOG_QUERIES.items():
            cursor.execute(sql.format(schema=f'"{schema}"'), {"schema": schema})
            described[kind] = sorted(cursor.fetchall())
    described["constraints"] = [(*row[:3], check_normalised(row[3]), *row[4:]) for row in described["constraints"]]
    return described


def check_normalised(definition: str) -> str:
    """A constraint's text without parentheses and casts, for CHECKs PostgreSQL stores re-parsed.

    Django writes `condition IN (...)` on a varchar column, which PostgreSQL keeps as
    `(ARRAY['a'::varchar, ...])::text[]`; pg_dump writes that text, and parsing it back stores each
    element cast instead, `ARRAY[('a'::varchar)::text, ...]`: the same test, another tree.
    """
    if not definition.startswith("CHECK"):
        return definition
    return re.sub(r"::[a-z ]+(\[\])?|[()]", "", definition)


@pytest.fixture
def fresh_scripts() -> Any:
    schema_script.forget()
    yield
    schema_script.forget()


def test_a_new_organisation_s_schema_is_the_template_object_for_object(
    make_organisation: Callable[..., Organisation],
) -> None:
    organisation = make_organisation("replayed")

    template, replayed = catalog_of(TEMPLATE), catalog_of(organisation.schema_name)
    assert all(template[kind] for kind in CATALOG_QUERIES), {kind: len(rows) for kind, rows in template.items()}
    assert replayed == template
    assert all(row[-1] for row in replayed["sequences"]), "every identity sequence belongs to the new schema"


def test_sign_up_replays_the_stored_script_without_cloning(
    make_organisation: Callable[..., Organisation], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_clone(*args: object, **kwargs: object) -> None:
        raise AssertionError("clone_schema ran")

    monkeypatch.setattr(CloneSchema, "clone_schema", no_clone)
    stored = SchemaScript.objects.get(template=TEMPLATE)
    assert stored.fingerprint == template_fingerprint(TEMPLATE), "captured when the template was set up"

    first, second = make_organisation("replay-one"), make_organisation("replay-two")

    with connection.cursor() as cursor:  # two schemas, each with its own sequences: ids start afresh in each
        for organisation in (first, second):
            table = f'"{organisation.schema_name}".watchlists_watchlist'
            cursor.execute(
                f"INSERT INTO {table} (name, symbols, created, updated) "  # noqa: S608 (the test's own schema)
                "VALUES ('w', '{}', now(), now()) RETURNING id"
            )
            assert cursor.fetchone() == (1,)
    assert SchemaScript.objects.filter(template=TEMPLATE).count() == 1


def test_a_template_migrated_since_the_capture_is_cloned_from_until_bootstrap_captures_it(
    make_organisation: Callable[..., Organisation], fresh_scripts: None, caplog: pytest.LogCaptureFixture
) -> None:
    """pg_dump reads the whole catalog (13 s at 10,000 organisations): sign-up never runs it."""
    SchemaScript.objects.filter(template=TEMPLATE).update(fingerprint="0" * 64, script="SELECT 1/0")

    with caplog.at_level(logging.WARNING, logger="tenants.schema_script"):
        cloned = make_organisation("not-yet-captured")
    assert "until `manage.py bootstrap` captures it" in caplog.text
    assert catalog_of(cloned.schema_name)["migrations"] == catalog_of(TEMPLATE)["migrations"]

    assert template_schema_sync() == TEMPLATE  # bootstrap's step

    stored = SchemaScript.objects.get(template=TEMPLATE)
    assert stored.fingerprint == template_fingerprint(TEMPLATE), "the old version's script is replaced"
    assert SCHEMA_PLACEHOLDER in stored.script
    replayed = make_organisation("captured-again")
    assert catalog_of(replayed.schema_name) == catalog_of(TEMPLATE)


def test_without_pg_dump_sign_up_clones_and_says_so_once(
    make_organisation: Callable[..., Organisation], without_pg_dump: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tenants.schema_script"):
        first = make_organisation("cloned-one")
        make_organisation("cloned-two")

    warnings = [record.getMessage() for record in caplog.records if record.name == "tenants.schema_script"]
    assert len(warnings) == 1, warnings
    assert "cloned with clone_schema" in warnings[0]
    with caplog.at_level(logging.WARNING, logger="tenants.schema_script"):
        assert not schema_script.schema_script_ensure(TEMPLATE)
    assert "/nonexistent/pg_dump" in caplog.text
    assert not SchemaScript.objects.exists()
    cloned, template = catalog_of(first.schema_name), catalog_of(TEMPLATE)
    assert cloned["migrations"] == template["migrations"]
    assert cloned["indexes"] == template["indexes"]


def test_a_pg_dump_that_fails_leaves_sign_up_to_the_clone(
    make_organisation: Callable[..., Organisation], without_pg_dump: None, settings: Settings, tmp_path: Any
) -> None:
    refusing = tmp_path / "pg_dump"
    refusing.write_text("#!/bin/sh\necho 'pg_dump: error: aborting because of server version mismatch' >&2\nexit 1\n")
    refusing.chmod(0o755)
    settings.PG_DUMP = str(refusing)

    assert not schema_script.schema_script_ensure(TEMPLATE)
    organisation = make_organisation("dump-refused")

    assert catalog_of(organisation.schema_name)["migrations"] == catalog_of(TEMPLATE)["migrations"]
    with pytest.raises(ScriptError, match="server version mismatch"):
        schema_script.schema_script_capture(TEMPLATE, template_fingerprint(TEMPLATE))


DUMP = """--
-- PostgreSQL database dump
--
\\restrict abc123
SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
CREATE SCHEMA tenant_template;
SET default_table_access_method = heap;
CREATE TABLE tenant_template.t (
    id bigint NOT NULL,
    note text DEFAULT 'tenant_template_x'::text
);
INSERT INTO tenant_template.t VALUES (1, 'a');
SELECT pg_catalog.setval('tenant_template.t_id_seq', 1, false);
ALTER TABLE ONLY tenant_template.t
    ADD CONSTRAINT t_other_fk FOREIGN KEY (id) REFERENCES public.other(id);
--
-- PostgreSQL database dump complete
--

\\unrestrict abc123
"""


def test_the_script_keeps_statements_and_leaves_out_settings_and_meta_commands() -> None:
    script = replay_script(DUMP, TEMPLATE)

    assert script.splitlines() == [
        f"CREATE SCHEMA {SCHEMA_PLACEHOLDER};",
        f"CREATE TABLE {SCHEMA_PLACEHOLDER}.t (",
        "    id bigint NOT NULL,",
        "    note text DEFAULT 'tenant_template_x'::text",
        ");",
        f"INSERT INTO {SCHEMA_PLACEHOLDER}.t VALUES (1, 'a');",  # noqa: S608 (expected text, not a query)
        f"SELECT pg_catalog.setval('{SCHEMA_PLACEHOLDER}.t_id_seq', 1, false);",
        f"ALTER TABLE ONLY {SCHEMA_PLACEHOLDER}.t",
        "    ADD CONSTRAINT t_other_fk FOREIGN KEY (id) REFERENCES public.other(id);",
    ]


def test_a_row_s_text_over_several_lines_is_kept_whole() -> None:
    """Lines inside a string literal that look like comments, settings or meta-commands are data."""
    value = "first\n\n-- not a comment\nSET x = 1;\n\\not_a_meta_command\nlast"
    dump = DUMP.replace("(1, 'a')", f"(1, '{value}')")

    script = replay_script(dump, TEMPLATE)

    assert f"INSERT INTO {SCHEMA_PLACEHOLDER}.t VALUES (1, '{value}');" in script  # noqa: S608 (expected text)


@pytest.mark.parametrize(
    ("dump", "message"),
    [
        pytest.param(
            DUMP.replace("(1, 'a')", "(1, 'see tenant_template.t')"), "names tenant_template", id="name-in-a-row"
        ),
        pytest.param(
            DUMP.replace("(1, 'a')", "(1, 'see tenant_template')"), "names tenant_template", id="bare-name-in-a-row"
        ),
        pytest.param(DUMP.replace("CREATE SCHEMA tenant_template;\n", ""), "0 CREATE SCHEMA", id="no-create-schema"),
        pytest.param(DUMP + "CREATE SCHEMA tenant_template;\n", "2 CREATE SCHEMA", id="two-create-schema"),
        pytest.param(DUMP + "RESET search_path;\n", "must not run", id="reset"),
        pytest.param(DUMP + "COMMIT;\n", "must not run", id="commit"),
        pytest.param("", "0 CREATE SCHEMA", id="empty-output"),
    ],
)
def test_a_dump_that_does_not_fit_is_refused(dump: str, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        replay_script(dump, TEMPLATE)


def test_a_replay_leaves_the_connection_s_schema_and_search_path_as_they_were(
    make_organisation: Callable[..., Organisation],
) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW search_path")
        before = cursor.fetchone()
    schema_before = tenant_connection().schema_name

    make_organisation("replay-session")

    with connection.cursor() as cursor:
        cursor.execute("SHOW search_path")
        assert cursor.fetchone() == before
    assert tenant_connection().schema_name == schema_before


def test_a_stored_script_that_fails_is_dropped_and_the_schema_cloned(
    make_organisation: Callable[..., Organisation], fresh_scripts: None, caplog: pytest.LogCaptureFixture
) -> None:
    fingerprint = template_fingerprint(TEMPLATE)
    SchemaScript.objects.filter(template=TEMPLATE).update(script=f"CREATE SCHEMA {SCHEMA_PLACEHOLDER}; SELECT 1/0;")

    with caplog.at_level(logging.ERROR, logger="tenants.schema_script"):
        organisation = make_organisation("replay-broken")

    assert "failed: it is dropped" in caplog.text
    assert catalog_of(organisation.schema_name)["migrations"] == catalog_of(TEMPLATE)["migrations"]
    assert not SchemaScript.objects.filter(template=TEMPLATE, script__contains="1/0").exists()
    assert fingerprint == template_fingerprint(TEMPLATE)


def test_pg_dump_gets_the_database_s_address_and_the_password_only_in_its_environment(
    settings: Settings, tmp_path: Path, fresh_scripts: None
) -> None:
    recorded = tmp_path / "recorded.json"
    recording = tmp_path / "pg_dump"
    recording.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "call = {'argv': sys.argv[1:], 'password': os.environ.get('PGPASSWORD'),\n"
        "        'options': os.environ.get('PGOPTIONS')}\n"
        f"json.dump(call, open({str(recorded)!r}, 'w'))\n"
        "sys.exit(3)\n"
    )
    recording.chmod(0o755)
    settings.PG_DUMP = str(recording)
    settings.DATABASES["default"]["PASSWORD"] = "s3cret'pw"

    try:
        with pytest.raises(ScriptError, match="exited with 3"):
            schema_script.pg_dump_schema(TEMPLATE)
    finally:
        settings.DATABASES["default"]["PASSWORD"] = ""
    call = json.loads(recorded.read_text())
    assert call["password"] == "s3cret'pw"
    assert call["options"] == "-c enable_nestloop=off"
    assert not any("s3cret" in argument for argument in call["argv"])
    options = [argument for argument in call["argv"] if not argument.startswith("--dbname=")]
    assert options == ["--inserts", "--no-owner", "--no-privileges", "--no-comments", f"--schema={TEMPLATE}",
                       "--lock-wait-timeout=30s"]  # fmt: skip
    [dbname] = [argument.removeprefix("--dbname=") for argument in call["argv"] if argument.startswith("--dbname=")]
    conninfo = conninfo_to_dict(dbname)
    params = connection.get_connection_params()
    assert conninfo["dbname"] == params["dbname"]
    assert conninfo.get("host") == params.get("host")
    assert "pool" not in conninfo
    assert "cursor_factory" not in conninfo


def test_a_schema_name_outside_the_organisations_pattern_is_refused() -> None:
    with pytest.raises(ValueError, match="not an organisation's schema name"):
        schema_script.schema_replay(template=TEMPLATE, name='org"; DROP SCHEMA public; --')
