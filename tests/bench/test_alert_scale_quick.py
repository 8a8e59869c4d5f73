"""The alerts-at-scale bench runs end to end, tiny, against the test database, and writes every figure.

Nothing here asserts speed: only that the figures are there and sane (quotes published, CPU measured,
every alert loaded by the feed's engine and by the bench alone, firings counted, everything removed).
"""

from pathlib import Path
from typing import Any

import orjson
import pytest

from billing.models import Plan
from tenants.models import Organisation
from tests.bench.runs import bench_run
from tests.streaming import live_support

pytestmark = pytest.mark.live

# The test database, not held in a transaction: the bench's processes must see each other's rows.
db = live_support.db
BENCH_SECONDS = 90

ORGANISATIONS, ALERTS_PER_ORGANISATION = 3, 20
WINDOW_FIELDS = {"side", "start_ms", "end_ms", "offered_ticks_per_s", "expected_quotes_per_s", "delivered_pct",
                 "p50_ms", "p99_ms", "feed_cpu_pct", "feed_cpu_us_per_quote", "feed_deliveries_per_s", "web_cpu_pct",
                 "client_cpu_pct", "publisher_cpu_pct", "redis_cpu_pct", "machine_cpu_pct", "others_cpu_pct",
                 "feed_rss_mb", "fired", "written"}  # fmt: skip
SUMMARY_FIELDS = {"organisations", "alerts", "offered_ticks_per_s", "feed_cpu_us_per_quote_before",
                  "feed_cpu_us_per_quote_after", "feed_cpu_ratio", "feed_cpu_us_per_quote_added",
                  "feed_cpu_us_per_quote_quiet", "feed_cpu_us_per_quote_evaluating", "feed_cpu_ms_per_firing",
                  "reload_seconds", "fired_in_quiet_windows", "written_per_s", "fire_drain_seconds",
                  "engine_evaluate_us_per_quote", "load_seconds", "load_seconds_alone", "feed_rss_mb_before",
                  "feed_rss_mb_after", "fired_in_windows", "fired_per_s", "fired_total", "machine_cpu_pct",
                  "others_cpu_pct"}  # fmt: skip


def test_the_alert_bench_measures_the_feed_without_and_with_alerts(
    db: None, django_db_blocker: Any, tmp_path: Path
) -> None:
    output_path = tmp_path / "alerts.json"
    output = bench_run(
        "bench.alert_scale", output_path,
        "--quick", "--organisations", str(ORGANISATIONS), "--alerts-per-organisation",
        str(ALERTS_PER_ORGANISATION), "--connections", "10", "--stream-organisations", "2", "--rate", "400",
        "--seconds", "1", "--warmup", "0.5", "--replay-quotes", "2000", within=BENCH_SECONDS,
    )  # fmt: skip
    document = orjson.loads(output_path.read_bytes())

    assert document["completed"] is True, output
    assert {"cpus", "load_average_start", "load_average_end"} <= set(document["machine"])
    alerts = ORGANISATIONS * ALERTS_PER_ORGANISATION
    assert document["alerts"] == alerts
    for side in ("before", "quiet", "after"):
        rows = document[side]["windows"]
        assert len(rows) == 1, output
        for row in rows:
            assert set(row) >= WINDOW_FIELDS
            assert row["side"] == side
            assert row["offered_ticks_per_s"] > 0, output  # the publisher published, the feed quoted
            assert row["feed_cpu_pct"] > 0
            assert row["feed_cpu_us_per_quote"] > 0
            assert row["feed_rss_mb"] > 0
    assert document["before"]["windows"][0]["fired"] is None
    assert 0 <= document["after"]["windows"][0]["fired"] <= document["fired"]["total"] <= alerts
    assert document["quiet"]["windows"][0]["fired"] == 0  # every alert in its cooldown: evaluated, none written

    load = document["load"]
    assert load["organisations"] == ORGANISATIONS
    assert load["engine_seconds"] > 0
    assert load["alone_seconds"] > 0
    assert load["reload_seconds"] > 0
    assert load["rules"] == alerts  # every alert active and within the plan's allowance
    replay = document["replay"]
    assert replay["alerts"] == alerts
    assert replay["quotes"] > 0
    assert replay["us_per_quote"] > 0

    summary = document["summary"]
    assert set(summary) >= SUMMARY_FIELDS
    assert summary["feed_cpu_ratio"] > 0
    assert summary["feed_rss_mb_before"] > 0
    assert summary["feed_rss_mb_after"] > 0
    with django_db_blocker.unblock():  # it removed what it created
        assert not Organisation.objects.filter(slug__startswith="bench").exists()
        assert not Plan.objects.filter(slug__startswith="bench-").exists()
