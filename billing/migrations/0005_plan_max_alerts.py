"""Plans get `max_alerts`; the seeded plans take SPEC's values (free 3, pro 50, business 1000)."""

from django.db import migrations, models

from billing.seed import SEED_MAX_ALERTS


def seed_max_alerts(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for slug, max_alerts in SEED_MAX_ALERTS.items():
        Plan.objects.filter(slug=slug).update(max_alerts=max_alerts)


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_billing_account_stripe_event_history")]

    operations = [
        migrations.AddField(
            model_name="plan",
            name="max_alerts",
            field=models.PositiveIntegerField(
                blank=True, default=3, help_text="Price alerts an organisation may keep."
            ),
        ),
        migrations.RunPython(seed_max_alerts, migrations.RunPython.noop),
    ]
