"""Alerts' shared state, in Redis and in one process's memory: change marks read since a number, last prices."""

from typing import Any

import pytest
from django.conf import settings as django_settings

from alerts.store import AlertStore, alerts_changed_mark

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("clean_alert_state")]


@pytest.fixture(params=["redis", "memory"])
def backend(request: pytest.FixtureRequest, settings: Any) -> str:
    if request.param == "memory":
        settings.REDIS_URL = ""  # dev mode without Redis: the web process runs the feed and its engine
    return str(request.param)


async def test_an_engine_reads_each_change_once_from_the_number_it_has_seen(backend: str) -> None:
    store = AlertStore()
    seen = await store.changed_seq()

    alerts_changed_mark(schema_name="org_a")
    alerts_changed_mark(schema_name="org_b")
    alerts_changed_mark(schema_name="org_a")
    seen, changed = await store.changed_since(seen)

    assert changed == {"org_a", "org_b"}
    assert await store.changed_since(seen) == (seen, set())
    alerts_changed_mark(schema_name="org_c")
    assert (await store.changed_since(seen))[1] == {"org_c"}
    await store.close()


async def test_last_prices_are_kept_per_delay(backend: str) -> None:
    store = AlertStore()
    await store.prices_store(0, {"AAPL": (104.25, 4.25)})
    await store.prices_store(15, {"AAPL": (99.5, -0.5)})

    live, late = await store.prices_load(0), await store.prices_load(15)

    assert (live["AAPL"].price, live["AAPL"].change_pct) == (104.25, 4.25)
    assert (late["AAPL"].price, late["AAPL"].change_pct) == (99.5, -0.5)
    assert (await store.prices_load(5)) == {}
    assert bool(django_settings.REDIS_URL) is (backend == "redis")
    await store.close()
