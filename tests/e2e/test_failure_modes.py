"""What a real server and `make run` do when something they need is missing: a clear refusal, not a trace."""

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.live import ROOT, LiveServer, free_port, http_get, server_environment, uvicorn_server

pytestmark = pytest.mark.live

UNREACHABLE_DATABASE_URL = "postgres://root@127.0.0.1:1/nope"  # nothing listens on port 1


METRICS_TOKEN = "e2e-metrics-token-0123456789"


@pytest.fixture(scope="module")
def server_without_database() -> Iterator[LiveServer]:
    with uvicorn_server(DATABASE_URL=UNREACHABLE_DATABASE_URL, METRICS_TOKEN=METRICS_TOKEN) as live:
        yield live


def test_healthz_answers_while_the_database_is_down(server_without_database: LiveServer) -> None:
    status, body = http_get(server_without_database.port, "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})


def test_readyz_is_503_and_names_the_unreachable_database_to_the_metrics_token(
    server_without_database: LiveServer,
) -> None:
    status, body = http_get(server_without_database.port, "/readyz")
    request = urllib.request.Request(
        f"http://127.0.0.1:{server_without_database.port}/readyz", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    with pytest.raises(urllib.error.HTTPError) as operator_answer:
        urllib.request.urlopen(request, timeout=15)  # noqa: S310 (loopback only)
    payload = json.loads(operator_answer.value.read())
    assert (status, json.loads(body)) == (503, {"status": "unavailable"})  # anonymous: no details
    assert operator_answer.value.code == 503
    assert payload["status"] == "unavailable"
    assert payload["checks"]["database"].startswith("unreachable")
    assert payload["checks"]["channel_layer"] == "ok"


# The landing page and the sign-up form make no query, so they still render (200) with the database
# down, and the visitor only meets the outage after filling the form in. Reported as a product bug;
# strict, so that the fix turns these into failures until the marks are removed.


@pytest.mark.parametrize(
    ("host", "path"),
    [("localhost", "/"), ("localhost", "/pricing/"), ("localhost", "/signup/"), ("acme.localhost", "/")],
)  # fmt: skip
def test_pages_are_a_503_page_not_a_stack_trace(server_without_database: LiveServer, host: str, path: str) -> None:
    status, body = http_get(server_without_database.port, path, host=host, timeout=15)
    assert status == 503
    assert "temporarily unavailable" in body
    assert "Traceback" not in body
    assert "OperationalError" not in body


@pytest.fixture
def occupied_port() -> Iterator[int]:
    """A loopback port that something else is already listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_devtools_run_refuses_a_port_in_use_and_starts_nothing(occupied_port: int) -> None:
    # Services that would fail loudly if it went on: the refusal must come before any of them.
    env = server_environment(PORT=str(occupied_port), DATABASE_URL=UNREACHABLE_DATABASE_URL, REDIS_URL="")
    env.pop("HOST", None)
    result = subprocess.run(
        [sys.executable, "-m", "devtools", "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"Port {occupied_port}" in output
    assert "already in use" in output
    assert f"PORT={occupied_port + 1}" in output  # says what to do
    assert "PostgreSQL:" not in output  # no service looked up, no bootstrap, no server started
    assert "Database ready." not in output
    assert "serving at" not in output


def test_devtools_run_port_check_sees_a_bound_but_idle_port() -> None:
    """A socket bound by another process without listening yet still makes the port unusable."""
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        env = server_environment(PORT=str(port), DATABASE_URL=UNREACHABLE_DATABASE_URL, REDIS_URL="")
        env.pop("HOST", None)
        result = subprocess.run(
            [sys.executable, "-m", "devtools", "run"], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=30, check=False,
        )  # fmt: skip
    assert result.returncode != 0
    assert f"Port {port}" in result.stdout + result.stderr
