"""The benchmark runs end to end, tiny, against the test database: every system, every field."""

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from billing.models import Plan
from tenants.models import Organisation
from tests import live
from tests.streaming import live_support

pytestmark = pytest.mark.live

# The live tests' stand-in for `db`: the test database is created, but not held in a transaction
# (the bench's own processes write to it and must see each other's rows).
db = live_support.db

SYSTEMS = ("naive", "raw", "tickerdeck")
RUN_FIELDS = {"system", "connections", "organisations", "offered_ticks_per_s", "expected_ticks_per_s",
              "delivered_ticks_per_s", "frames_per_s", "p50_ms", "p99_ms", "server_cpu_pct", "client_cpu_pct",
              "rss_mb"}  # fmt: skip
SLOW_READER_FIELDS = {"offered_ticks_per_s", "fast_p99_ms_baseline", "fast_p99_ms_with_slow", "fast_p99_rise_pct",
                      "server_rss_mb_start", "server_rss_mb_end", "slow_clients", "slow_closed_4408"}  # fmt: skip
BENCH_SECONDS = 150


def run_bench(*args: str) -> str:
    """`python -m bench ARGS`; on a timeout it gets SIGTERM first, so it stops what it started."""
    bench = subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=live.ROOT, env=dict(os.environ),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        output, _ = bench.communicate(timeout=BENCH_SECONDS)
    except subprocess.TimeoutExpired:
        bench.send_signal(signal.SIGTERM)
        output, _ = bench.communicate(timeout=60)
        pytest.fail(f"the bench ran over {BENCH_SECONDS} s:\n{output}")
    assert bench.returncode == 0, output
    return output


def test_the_bench_measures_every_system_and_writes_every_field(
    db: None, django_db_blocker: Any, tmp_path: Path
) -> None:
    output_path = tmp_path / "latest.json"
    output = run_bench(
        "--connections", "20", "--organisations", "2", "--rates", "20,40", "--warmup", "0.5", "--seconds", "1",
        "--slow-seconds", "1", "--output", str(output_path), "--database-url", live.test_database_url(),
        "--skip-bootstrap",
    )  # fmt: skip
    document = orjson.loads(output_path.read_bytes())

    assert {"started_at", "machine", "config", "runs", "summary"} <= set(document)
    assert {"cpus", "python"} <= set(document["machine"])
    for system in SYSTEMS:
        rows = [row for row in document["runs"] if row["system"] == system]
        assert rows, f"no run of {system}:\n{output}"
        for row in rows:
            assert set(row) >= RUN_FIELDS, f"{system} row lacks {RUN_FIELDS - set(row)}"
        assert max(row["delivered_ticks_per_s"] for row in rows) > 0, f"{system} delivered nothing:\n{output}"
    summary = document["summary"]
    assert set(SYSTEMS) <= set(summary["systems"])
    for figures in summary["systems"].values():
        assert {"max_sustainable_ticks_per_s", "by_connections"} <= set(figures)
        assert set(figures["by_connections"]) == {"20"}
    assert set(summary) >= {"ratio_vs_naive", "ratio_vs_raw", "connects_per_s", "idle_kb_per_connection", "slow_reader"}
    assert set(summary["slow_reader"]) >= SLOW_READER_FIELDS
    assert summary["slow_reader"]["slow_clients"] == 1  # every 20th stream
    with django_db_blocker.unblock():  # it removed what it created
        assert not Organisation.objects.filter(slug__startswith="bench").exists()
        assert not Plan.objects.filter(slug__startswith="bench-").exists()
