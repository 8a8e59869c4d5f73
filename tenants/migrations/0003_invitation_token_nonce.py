# Invitation links carry a random nonce stored with the invitation (the signing key alone no longer
# forges one). Adding the column computes its callable default once for the whole table, so every
# existing row is then given its own nonce before the constraint is added. Links sent before this
# migration lack the nonce and stop working: an admin uses "Send again".

import secrets

from django.db import migrations, models

import tenants.models


def fill_nonces(apps, schema_editor):
    Invitation = apps.get_model("tenants", "Invitation")
    for invitation in Invitation.objects.only("pk").iterator():
        Invitation.objects.filter(pk=invitation.pk).update(token_nonce=secrets.token_urlsafe(24))


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0002_invitation"),
    ]

    operations = [
        migrations.AddField(
            model_name="invitation",
            name="token_nonce",
            field=models.CharField(default=tenants.models.invitation_token_nonce, editable=False, max_length=64),
        ),
        migrations.RunPython(fill_nonces, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="invitation",
            constraint=models.CheckConstraint(
                condition=models.Q(("token_nonce__regex", "^[A-Za-z0-9_-]{32,64}$")),
                name="invitation_token_nonce_random",
            ),
        ),
    ]
