# The Symbol model moves here from the streaming app, table and rows included: this migration only
# tells Django's state that the model is symbols.Symbol now. Its table, streaming_symbol, was
# created by streaming 0001 and 0002 (on a fresh database too, since this migration depends on
# them) and stays where it is, named in Meta.db_table. streaming 0003 drops the model from
# streaming's state, after this one.

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('streaming', '0002_symbol_search_index'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Symbol',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('symbol', models.CharField(max_length=12, unique=True)),
                        ('name', models.CharField(max_length=200)),
                        ('exchange', models.CharField(blank=True, max_length=20)),
                        ('country', models.CharField(blank=True, max_length=60)),
                        ('indices', django.contrib.postgres.fields.ArrayField(base_field=models.CharField(max_length=40), blank=True, default=list, size=None)),
                        ('isin', models.CharField(blank=True, max_length=12)),
                    ],
                    options={
                        'db_table': 'streaming_symbol',
                        'ordering': ('symbol',),
                        'indexes': [models.Index(django.contrib.postgres.indexes.OpClass(django.db.models.functions.text.Upper('name'), name='text_pattern_ops'), name='symbol_name_upper_prefix')],
                        'constraints': [models.CheckConstraint(condition=models.Q(('symbol', django.db.models.functions.text.Upper('symbol'))), name='symbol_upper_case')],
                    },
                ),
            ],
        ),
    ]
