"""The template schema that new organisations are cloned from (much faster than migrating each)."""

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import quote_schema_name

from .db import activate_public_schema


def template_schema_sync(*, verbosity: int = 0) -> str:
    """Create the template schema when missing and bring it up to date with the tenant migrations."""
    name: str = settings.TENANT_BASE_SCHEMA
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_schema_name(name)}")
    try:
        call_command("migrate_schemas", tenant=True, schema_name=name, interactive=False, verbosity=verbosity)
    finally:
        activate_public_schema()
    return name
