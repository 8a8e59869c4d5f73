# The symbol directory is the symbols app's now (symbols 0001 takes the model over in Django's
# state). Only the state forgets streaming.Symbol: the table, streaming_symbol, and its rows stay.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('streaming', '0002_symbol_search_index'),
        ('symbols', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name='Symbol'),
            ],
        ),
    ]
