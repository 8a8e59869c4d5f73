# The ticker of the primary listing on its exchange (HSBA for HSBA.L on LON); `load_symbols` fills it.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('symbols', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='symbol',
            name='exchange_ticker',
            field=models.CharField(blank=True, default='', max_length=12),
            preserve_default=False,
        ),
    ]
