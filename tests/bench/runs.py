"""Runs a bench command as `make bench` would, bounded in time."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import live


def bench_run(module: str, json_path: Path, *args: str, within: float) -> str:
    """`python -m MODULE ARGS` on the test database, writing its JSON to `json_path`; what it printed.

    Over `within` seconds it gets SIGTERM first, so it removes what it made (organisations, Redis keys,
    processes), and the test fails with its output.
    """
    command = [sys.executable, "-m", module, *args, "--output", str(json_path),
               "--database-url", live.test_database_url(), "--skip-bootstrap"]  # fmt: skip
    bench = subprocess.Popen(command, cwd=live.ROOT, env=dict(os.environ),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        output, _ = bench.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        bench.send_signal(signal.SIGTERM)
        output, _ = bench.communicate(timeout=60)
        pytest.fail(f"{module} ran over {within} s:\n{output}")
    assert bench.returncode == 0, output
    return output
