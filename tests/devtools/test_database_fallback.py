"""`python -m devtools run` with no DATABASE_URL and a local server that refuses us: an embedded PostgreSQL,
set up and served."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil  # pgserver's own dependency
import pytest

from devtools.servers import port_open
from tests.live import ROOT, free_port, http_get, wait_until_ready

pytestmark = pytest.mark.live

STARTUP_SECONDS = 150  # initdb, migrations of every schema, the symbol directory, the demo organisation
SHUTDOWN_SECONDS = 15


@dataclass
class DevRun:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log: Path
    postmaster_pid: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """Live (not zombie) postgres server processes started on this data directory."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        alive = process.info["status"] != psutil.STATUS_ZOMBIE
        if process.info["name"] == "postgres" and str(data_dir) in cmdline and alive:
            found.append(process)
    return found


def _stop_leftovers(run: DevRun) -> None:
    """Teardown safety net: whatever the test left running is stopped, by its own pid."""
    if run.process.poll() is None:
        run.process.send_signal(signal.SIGTERM)
        try:
            run.process.wait(timeout=SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            run.process.kill()
            run.process.wait()
    for process in postgres_processes(run.data_dir):
        process.terminate()
        psutil.wait_procs([process], timeout=5)


@pytest.fixture(scope="module")
def refusing_server() -> Iterator[int]:
    """A port where something listens and hangs up at once: a local "PostgreSQL" that refuses every login."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def refuse() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                connection, _ = listener.accept()
                connection.close()

    thread = threading.Thread(target=refuse, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    listener.close()


@pytest.fixture(scope="module")
def dev_run(refusing_server: int) -> Iterator[DevRun]:
    """`python -m devtools run` as `make run` starts it, where the local PostgreSQL refuses us."""
    # Under /tmp, not pytest's 0700 tmp tree: as root, pgserver runs postgres as the user `pgserver`,
    # which must traverse the data directory's parents.
    base = Path(tempfile.mkdtemp(prefix="tickerdeck-embedded-", dir="/tmp"))
    data_dir, log = base / "pg", base / "run.log"
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update({"LOCAL_POSTGRES_ADDRESS": f"127.0.0.1:{refusing_server}", "EMBEDDED_POSTGRES_DIR": str(data_dir),
                "REDIS_URL": "", "PORT": str(port), "HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"})  # fmt: skip
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools", "run"], cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    run = DevRun(process=process, port=port, data_dir=data_dir, log=log, postmaster_pid=0)
    try:
        started = time.perf_counter()
        try:
            wait_until_ready(port, process, seconds=STARTUP_SECONDS)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"{exc}\n--- devtools output ---\n{run.output()[-6000:]}")
        print(f"\ndevtools run with embedded PostgreSQL ready in {time.perf_counter() - started:.1f} s")  # noqa: T201
        run.postmaster_pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        yield run
    finally:
        _stop_leftovers(run)
        shutil.rmtree(base, ignore_errors=True)


def test_run_starts_the_embedded_postgres_and_bootstraps_it(dev_run: DevRun) -> None:
    output = dev_run.output()
    assert "refused us" in output, "the local server's refusal is said, not a crash"
    assert f"PostgreSQL: embedded server in {dev_run.data_dir}" in output
    assert "Redis: none" in output
    assert "Database ready." in output
    postmaster = psutil.Process(dev_run.postmaster_pid)
    assert postmaster.name() == "postgres"
    assert str(dev_run.data_dir) in " ".join(postmaster.cmdline())
    assert "pgserver" in postmaster.exe()  # pgserver's bundled binaries, not the machine's


def test_run_is_ready_and_serves_the_seeded_plans(dev_run: DevRun) -> None:
    status, body = http_get(dev_run.port, "/readyz")
    assert status == 200, body  # the database and channel layer answer (details are for staff only)
    assert '"status": "ok"' in body
    status, body = http_get(dev_run.port, "/pricing/")
    assert status == 200
    for plan in ("Free", "Pro", "Business"):
        assert f"<h2>{plan}</h2>" in body


def test_run_creates_the_demo_organisation(dev_run: DevRun) -> None:
    status, body = http_get(dev_run.port, "/accounts/login/", host="demo.localhost")
    assert status == 200
    assert "Demo Capital" in body


def test_sigterm_stops_the_server_and_the_embedded_postgres(dev_run: DevRun) -> None:
    started = time.perf_counter()
    dev_run.process.send_signal(signal.SIGTERM)
    try:
        exit_code = dev_run.process.wait(timeout=SHUTDOWN_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"devtools run still running {SHUTDOWN_SECONDS}s after SIGTERM")
    print(f"\ndevtools run stopped in {time.perf_counter() - started:.1f} s")  # noqa: T201
    assert exit_code == 0
    assert "Stopped." in dev_run.output()
    assert postgres_processes(dev_run.data_dir) == []
    assert not (dev_run.data_dir / "postmaster.pid").exists()  # a clean shutdown removes it
    assert not port_open("127.0.0.1", dev_run.port)  # uvicorn is gone too
