"""The soak runs end to end, tiny, against the test database: churn, plan switches, watchlist edits, abuse.

Nothing here asserts speed: only that its figures are there, that each kind of churn happened, and that
its own checks (memory, leases, logs, refusals) passed, which its exit status says too.
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

# The test database, not held in a transaction: the soak's processes must see each other's rows.
db = live_support.db
SOAK_SECONDS = 150
CONNECTIONS, VIEWERS = 60, 6
CONNECT_LIMIT, TOKEN_LIMIT = 40, 30  # low, so that the abuser reaches them with few requests
PROCESSES = {"web", "feed", "soak-client", "redis keys (this run)"}


def test_the_soak_churns_connections_and_finds_no_leak(db: None, django_db_blocker: Any, tmp_path: Path) -> None:
    output_path = tmp_path / "soak.json"
    output = bench_run(
        "bench.soak", output_path,
        "--connections", str(CONNECTIONS), "--viewers-pct", "10", "--minutes", "0.35", "--organisations", "3",
        "--addresses", "10", "--churn", "4", "--plan-every", "3", "--watchlist-every", "2", "--sample-every", "2",
        "--concurrency", "10", "--ws-connect-limit", f"{CONNECT_LIMIT} per 10 seconds",
        "--token-limit", f"{TOKEN_LIMIT} per minute", within=SOAK_SECONDS,
    )  # fmt: skip
    document = orjson.loads(output_path.read_bytes())

    failed = [check for check in document["checks"] if not check["passed"]]
    assert not failed, f"{failed}\n{output}"
    assert document["passed"] is True
    assert document["completed"] is True
    assert document["ramp"]["opened"] == CONNECTIONS
    connections = document["connections"]
    assert connections["open_at_end"] == CONNECTIONS, output
    assert connections["opened"] > CONNECTIONS  # slots opened again after the churn
    assert connections["closed_clean"] > 0
    assert connections["closed_abrupt_reset"] > 0
    assert connections["closed_abrupt_no_close_frame"] > 0
    assert connections["quotes"] > 0
    assert connections["viewer_tokens"]["200"] >= VIEWERS  # each viewer asked the endpoint for its token
    assert document["plan_changes"] > 0
    assert document["watchlist_edits"] > 0

    memory = document["memory"]
    assert set(memory) >= PROCESSES, memory
    for name in PROCESSES:
        assert memory[name]["judged"] is True
        assert memory[name]["start"] >= 0
        assert memory[name]["end"] > 0 or name == "redis keys (this run)"
    assert document["memory_samples"][0]["label"] == "start"
    assert document["memory_samples"][-1]["label"] == "end"

    assert document["leases_at_end"] == {"expected": [CONNECTIONS - VIEWERS, VIEWERS],
                                         "leases": [CONNECTIONS - VIEWERS, VIEWERS],
                                         "seconds": document["leases_at_end"]["seconds"], "equal": True}  # fmt: skip
    assert document["leases_after_close"]["leases"] == [0, 0]
    assert set(document["log_errors"]) == {"tickerdeck-server", "tickerdeck-feed", "soak-client"}
    assert not any(document["log_errors"].values()), document["log_error_lines"]

    abuse = document["abuse"]
    assert abuse["connect_attempts"] == 60  # 1.5 times the limit
    assert abuse["connects"]["accepted"] <= CONNECT_LIMIT
    assert abuse["connects_refused_4429"] > 0
    assert abuse["tokens"]["200"] <= TOKEN_LIMIT
    assert abuse["tokens_refused_429"] > 0
    assert document["limits"] == {"ws_connect": "40 per 10 second", "widget_token": "30 per 1 minute"}
    with django_db_blocker.unblock():  # it removed what it created
        assert not Organisation.objects.filter(slug__startswith="bench").exists()
        assert not Plan.objects.filter(slug__startswith="bench-").exists()
