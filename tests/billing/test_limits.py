"""billing.limits: the one reading of a plan's limits, on both paths, and who hears of a change."""

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from billing.limits import LIMITS_SQL_COLUMNS, PLAN_TABLE, PlanLimits
from billing.models import Plan
from billing.services import plan_save
from tests.streaming.conftest import Committed, committed, connect, hub_cleanup, receive, receive_until


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["free", "pro", "business"])
def test_the_sql_path_reads_the_same_limits_as_the_orm(slug: str) -> None:
    plan = Plan.objects.get(slug=slug)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {LIMITS_SQL_COLUMNS} FROM {PLAN_TABLE} p WHERE p.id = %s", [plan.pk])  # noqa: S608
        row = cursor.fetchone()
    assert PlanLimits.of_row(row) == PlanLimits.of_plan(plan)


@pytest.mark.django_db
def test_a_realtime_plan_has_no_delay_whatever_its_delay_field_says() -> None:
    plan = Plan(name="X", realtime=True, delay_minutes=15)
    assert PlanLimits.of_plan(plan).delay_minutes == 0
    assert PlanLimits.of_plan(plan).data_label == "Realtime"
    plan.realtime = False
    assert (PlanLimits.of_plan(plan).delay_minutes, PlanLimits.of_plan(plan).data_label) == (15, "15 min delayed")


async def test_only_a_change_of_limits_reaches_open_streams(committed: Committed, hub_cleanup: None) -> None:
    plan = await committed.plan(max_symbols_per_stream=5)
    tenant = await committed.tenant(plan)
    ws = connect(tenant.host, session=tenant.session, query="symbols=AAPL")
    await ws.connect()
    assert (await receive(ws))["type"] == "snapshot"

    def rename() -> None:
        plan.name = "Renamed"
        plan_save(plan=plan, changed=["name"])

    await sync_to_async(rename)()
    assert await ws.receive_nothing(1.0), "a renamed plan sends nothing"

    def raise_limit() -> None:
        plan.max_symbols_per_stream = 8
        plan_save(plan=plan, changed=["max_symbols_per_stream"])

    await sync_to_async(raise_limit)()
    assert (await receive_until(ws, "limits", within=2))["max_symbols"] == 8
    await ws.disconnect()


__all__ = ["committed", "hub_cleanup"]  # fixtures from tests/streaming/conftest.py
