"""Seed the plans of SPEC once; staff edit them in the admin afterwards."""

from django.db import migrations

from billing.seed import SEED_PLANS


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for fields in SEED_PLANS:
        Plan.objects.get_or_create(slug=fields["slug"], defaults=fields)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
