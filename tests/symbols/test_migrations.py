"""The directory moved from the streaming app to the symbols app without a new table or a lost row."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from symbols.models import Symbol

pytestmark = pytest.mark.django_db

# Before the move: the streaming app owned Symbol (migrations 0001-0002), and symbols did not exist.
STREAMING_BEFORE_THE_MOVE = ("streaming", "0002_symbol_search_index")
BEFORE_THE_MOVE: list[tuple[str, str | None]] = [STREAMING_BEFORE_THE_MOVE, ("symbols", None)]


def public_tables() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {name for (name,) in cursor.fetchall()}


def test_the_model_uses_the_table_that_held_the_rows() -> None:
    assert Symbol._meta.db_table == "streaming_symbol"
    assert "streaming_symbol" in public_tables()
    assert "symbols_symbol" not in public_tables()


def test_migrating_a_database_of_the_old_layout_keeps_every_row() -> None:
    # Runs the real migrations, back to the old layout and forward again, inside the test's
    # transaction: PostgreSQL rolls the schema changes back with everything else.
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_THE_MOVE)
    old_state = executor.loader.project_state(STREAMING_BEFORE_THE_MOVE)
    assert not any(app == "symbols" for app, _ in old_state.models)
    OldSymbol = old_state.apps.get_model("streaming", "Symbol")  # noqa: N806  (a model class)
    OldSymbol.objects.create(symbol="ZZOLD", name="Added under the old layout", exchange="FRA")
    rows_before = list(OldSymbol.objects.order_by("pk").values_list("pk", "symbol", "name"))

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert list(Symbol.objects.order_by("pk").values_list("pk", "symbol", "name")) == rows_before
    moved = Symbol.objects.get(symbol="ZZOLD")
    assert (moved.exchange, moved.exchange_ticker) == ("FRA", "")  # kept; the next load_symbols fills the rest
    assert "symbols_symbol" not in public_tables()
