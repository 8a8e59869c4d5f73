"""`manage.py migrate_organisations`: the template first, then only the schemas that lack one of its migrations."""

from collections.abc import Callable
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from tenants.models import Organisation
from tenants.schema_script import applied_migrations
from tenants.schema_template import schemas_behind

pytestmark = pytest.mark.django_db

TEMPLATE = "tenant_template"
ALERTS_0002 = ("alerts", "0002_webhook_delivery_constraint_name")


def forget_migration(schema: str, app: str, name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{schema}".django_migrations WHERE app = %s AND name = %s', [app, name])  # noqa: S608
        assert cursor.rowcount == 1


def migrate_organisations(*args: str) -> str:
    output = StringIO()
    call_command("migrate_organisations", *args, interactive=False, verbosity=0, stdout=output)
    return output.getvalue()


def test_only_a_schema_that_lacks_a_migration_is_migrated(make_organisation: Callable[..., Organisation]) -> None:
    behind, current = make_organisation("behind"), make_organisation("current")
    forget_migration(behind.schema_name, *ALERTS_0002)
    schemas = [behind.schema_name, current.schema_name]
    assert schemas_behind(TEMPLATE, schemas) == [behind.schema_name]

    output = migrate_organisations()

    assert "1 of " in output
    assert "lack a migration of the template: migrating them" in output
    assert schemas_behind(TEMPLATE, schemas) == []
    assert applied_migrations(behind.schema_name) == applied_migrations(TEMPLATE)


def test_nothing_to_migrate_says_so(make_organisation: Callable[..., Organisation]) -> None:
    make_organisation("up-to-date")

    output = migrate_organisations()

    assert output.startswith("All ")
    assert "have every migration of the template" in output


def test_all_migrates_every_schema_as_migrate_schemas_does(make_organisation: Callable[..., Organisation]) -> None:
    organisation = make_organisation("every")
    forget_migration(organisation.schema_name, *ALERTS_0002)

    output = migrate_organisations("--all")

    assert "lack a migration" not in output
    assert applied_migrations(organisation.schema_name) == applied_migrations(TEMPLATE)


def test_a_schema_that_cannot_be_read_counts_as_behind_with_its_batch(
    make_organisation: Callable[..., Organisation],
) -> None:
    readable, unreadable = make_organisation("readable"), make_organisation("unreadable")
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{unreadable.schema_name}".django_migrations RENAME TO old_migrations')

    assert schemas_behind(TEMPLATE, [readable.schema_name, unreadable.schema_name]) == [
        readable.schema_name,
        unreadable.schema_name,
    ], "migrate_schemas then deals with each, as it always did"
