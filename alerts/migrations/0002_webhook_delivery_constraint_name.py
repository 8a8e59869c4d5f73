"""Organisations cloned before the clone kept constraint names have `alerts_webhookdelivery_event_id_attempt_key`
where the model says `webhook_delivery_unique_attempt` (tenants.schema_template.constraint_names_restore): a
later migration dropping it by name would fail on their schemas. Renamed where it differs; nothing otherwise."""

from django.db import migrations

RENAME = """
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
             WHERE conrelid = 'alerts_webhookdelivery'::regclass
               AND conname = 'alerts_webhookdelivery_event_id_attempt_key') THEN
    ALTER TABLE alerts_webhookdelivery
      RENAME CONSTRAINT alerts_webhookdelivery_event_id_attempt_key TO webhook_delivery_unique_attempt;
  END IF;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [migrations.RunSQL(RENAME, reverse_sql=migrations.RunSQL.noop)]
