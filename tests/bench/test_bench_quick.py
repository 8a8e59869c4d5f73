"""The benchmark runs end to end, tiny, against the test database: every system, every field, the widget scenario.

Nothing here asserts speed: only that every figure is there and sane (counts, ratios, order of percentiles).
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

# The live tests' stand-in for `db`: the test database is created, but not held in a transaction
# (the bench's own processes write to it and must see each other's rows).
db = live_support.db

SYSTEMS = ("naive", "raw", "tickerdeck")
RUN_FIELDS = {"system", "connections", "organisations", "offered_ticks_per_s", "expected_ticks_per_s",
              "delivered_ticks_per_s", "frames_per_s", "p50_ms", "p99_ms", "server_cpu_pct", "client_cpu_pct",
              "rss_mb", "other_cpu_pct", "noisy"}  # fmt: skip
SLOW_READER_FIELDS = {"offered_ticks_per_s", "fast_p99_ms_baseline", "fast_p99_ms_with_slow", "fast_p99_rise_pct",
                      "server_rss_mb_start", "server_rss_mb_end", "slow_clients", "slow_closed_4408"}  # fmt: skip
WIDGET_VIEWERS, TOKEN_REQUESTS = 20, 40
WIDGET_TOKEN_FIELDS = {"requests", "concurrency", "ok", "errors", "seconds", "requests_per_s", "p50_ms", "p99_ms",
                       "max_ms", "distinct_tokens", "other_origin_refused", "server_cpu_ms_per_request",
                       "machine_cpu_pct"}  # fmt: skip
WIDGET_OPEN_FIELDS = {"viewers", "opened", "refused", "seconds", "connects_per_s", "connect_p50_ms", "connect_p99_ms",
                      "server_rss_mb_before", "server_rss_mb_after", "rss_kb_per_viewer", "widget_leases",
                      "stream_leases", "server_cpu_ms_per_connect", "machine_cpu_pct"}  # fmt: skip
WIDGET_STREAMING_FIELDS = {"quotes_per_viewer_per_s", "offered_ticks_per_s", "expected_quotes_per_s",
                           "delivered_quotes_per_s", "delivered_ratio", "p50_ms", "p99_ms", "sustained"}  # fmt: skip
WIDGET_SUMMARY_FIELDS = {"viewers", "opened", "connects_per_s", "connect_p99_ms", "rss_kb_per_viewer",
                         "quotes_per_viewer_per_s", "delivered_ratio", "p50_ms", "p99_ms", "token_requests_per_s",
                         "token_p50_ms", "token_p99_ms", "token_ok", "token_errors", "server_cpu_ms_per_connect",
                         "token_server_cpu_ms_per_request"}  # fmt: skip
BENCH_SECONDS = 180
IDLE_CONNECTIONS = 40  # over two load clients of 25
IDLE_FIELDS = {"connections", "opened", "refused", "clients", "connects_per_s", "connect_p99_ms",
               "server_rss_mb_before", "server_rss_mb_after", "rss_kb_per_connection", "quote_every_s",
               "expected_quotes_per_s", "delivered_quotes_per_s", "delivered_ratio", "p50_ms", "p99_ms",
               "other_cpu_pct", "noisy"}  # fmt: skip


def test_the_bench_measures_every_system_and_writes_every_field(
    db: None, django_db_blocker: Any, tmp_path: Path
) -> None:
    output_path = tmp_path / "latest.json"
    output = bench_run(
        "bench", output_path,
        "--connections", "20", "--organisations", "2", "--rates", "20,40", "--warmup", "0.5", "--seconds", "1",
        "--slow-seconds", "1", "--widget-viewers", str(WIDGET_VIEWERS), "--token-requests", str(TOKEN_REQUESTS),
        "--token-concurrency", "10", "--widget-quotes", "2", "--pace-symbols", "5", "--pace-ticks", "4",
        "--idle-connections", str(IDLE_CONNECTIONS), "--idle-per-client", "25", "--idle-quote-seconds", "0.5",
        "--idle-seconds", "1",
        within=BENCH_SECONDS,
    )  # fmt: skip
    document = orjson.loads(output_path.read_bytes())

    assert {"started_at", "machine", "config", "runs", "summary"} <= set(document)
    assert {"cpus", "python"} <= set(document["machine"])
    for system in SYSTEMS:
        rows = [row for row in document["runs"] if row["system"] == system]
        assert rows, f"no run of {system}:\n{output}"
        for row in rows:
            assert set(row) >= RUN_FIELDS, f"{system} row lacks {RUN_FIELDS - set(row)}"
            assert row["noisy"] == (row["other_cpu_pct"] > 10), row
        assert max(row["delivered_ticks_per_s"] for row in rows) > 0, f"{system} delivered nothing:\n{output}"
    summary = document["summary"]
    assert set(SYSTEMS) <= set(summary["systems"])
    for figures in summary["systems"].values():
        assert {"max_sustainable_ticks_per_s", "by_connections"} <= set(figures)
        assert set(figures["by_connections"]) == {"20"}
    assert set(summary) >= {"ratio_vs_naive", "ratio_vs_raw", "connects_per_s", "idle_kb_per_connection", "slow_reader",
                            "noisy_steps"}  # fmt: skip
    assert summary["noisy_steps"] == sum(row["noisy"] for row in document["runs"])
    assert set(summary["slow_reader"]) >= SLOW_READER_FIELDS
    assert summary["slow_reader"]["slow_clients"] == 1  # every 20th stream
    widget_figures_check(document, output)
    pace_figures_check(document, output)
    with django_db_blocker.unblock():  # it removed what it created
        assert not Organisation.objects.filter(slug__startswith="bench").exists()
        assert not Plan.objects.filter(slug__startswith="bench-").exists()


def pace_figures_check(document: dict[str, Any], output: str) -> None:
    """The pace scenario: the same ticks without, then with, every connection's throttle (which holds quotes back)."""
    pace = document["pace"]
    assert (pace["connections"], pace["symbols"], pace["max_per_second"]) == (20, 5, 1)
    assert [(r["ticks_per_symbol_per_s"], r["pace_max_per_second"]) for r in pace["steps"]] == [(4, None), (4, 1)]
    assert all(set(row) >= RUN_FIELDS | {"web_cpu_pct"} for row in pace["steps"])
    [saving] = document["summary"]["pace"]
    assert saving == pace["saving"][0]
    full, paced = saving["quotes_per_s"]
    assert full > 0, output
    assert paced < full, "at 4 ticks/s per symbol, one update a second per symbol sends fewer quotes"
    assert saving["server_cpu_saved_pct"] is not None
    assert saving["web_cpu_saved_pct"] is not None


def widget_figures_check(document: dict[str, Any], output: str) -> None:
    """The widget scenario: tokens from the endpoint, every viewer on a widget lease, quotes delivered."""
    widget = document["widget"]
    assert widget["viewers"] == WIDGET_VIEWERS
    assert len(widget["symbols"]) == 20
    token = widget["token"]
    assert set(token) >= WIDGET_TOKEN_FIELDS
    assert token["requests"] == TOKEN_REQUESTS
    assert 0 < token["ok"] <= TOKEN_REQUESTS, output
    assert token["ok"] + sum(token["errors"].values()) == TOKEN_REQUESTS
    assert token["requests_per_s"] > 0
    assert 0 <= token["p50_ms"] <= token["p99_ms"] <= token["max_ms"]
    assert token["distinct_tokens"] >= 1
    assert token["other_origin_refused"] == 5  # another web site gets 403, not a token
    assert token["server_cpu_ms_per_request"] > 0

    opened = widget["open"]
    assert set(opened) >= WIDGET_OPEN_FIELDS
    assert opened["viewers"] == WIDGET_VIEWERS
    assert opened["opened"] == WIDGET_VIEWERS, output
    assert opened["refused"] == 0
    assert opened["connects_per_s"] > 0
    assert 0 <= opened["connect_p50_ms"] <= opened["connect_p99_ms"]
    assert opened["rss_kb_per_viewer"] is not None  # growth over 10 viewers: may be 0 or even negative
    # Viewers take places against max_widget_viewers, never against max_streams.
    assert (opened["widget_leases"], opened["stream_leases"]) == (WIDGET_VIEWERS, 0)
    assert opened["server_cpu_ms_per_connect"] > 0

    assert widget["steps"], output
    for row in widget["steps"]:
        assert row["system"] == "widget"
        assert set(row) >= RUN_FIELDS | {"quotes_per_viewer_per_s"}
    streaming = widget["streaming"]
    assert set(streaming) >= WIDGET_STREAMING_FIELDS
    assert streaming["quotes_per_viewer_per_s"] == 2
    assert streaming["expected_quotes_per_s"] > 0
    assert 0 <= streaming["delivered_ratio"] <= 1
    assert streaming["delivered_quotes_per_s"] > 0, output
    assert 0 <= streaming["p50_ms"] <= streaming["p99_ms"]

    idle = document["idle"]
    assert set(idle) >= IDLE_FIELDS
    assert (idle["connections"], idle["opened"], idle["refused"], idle["clients"]) == (IDLE_CONNECTIONS, 40, {}, 2)
    assert idle["rss_kb_per_connection"] is not None
    assert idle["expected_quotes_per_s"] > 0
    assert idle["delivered_quotes_per_s"] > 0, output
    assert 0 <= idle["p50_ms"] <= idle["p99_ms"]
    assert document["summary"]["idle"] == idle

    summary = document["summary"]["widget"]
    assert set(summary) >= WIDGET_SUMMARY_FIELDS
    assert summary["connects_per_s"] == opened["connects_per_s"]
    assert summary["token_requests_per_s"] == token["requests_per_s"]
    assert summary["delivered_ratio"] == streaming["delivered_ratio"]
