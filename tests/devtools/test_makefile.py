"""The Makefile's test target, dry-run: both forms parse and run the suite as README says."""

import os
import subprocess

from tests.live import ROOT


def dry_run(*variables: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ARGS"}  # the Makefile's own default
    result = subprocess.run(["make", "-n", "test", *variables], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_test_installs_what_the_browser_and_cluster_tests_need_and_runs_everything() -> None:
    commands = dry_run()
    assert "nginx-light" in commands
    assert "-m devtools test -n 2 --dist worksteal" in commands
    assert "not browser" not in commands


def test_skip_browser_installs_nothing_with_apt_deselects_those_tests_and_says_so() -> None:
    commands = dry_run("SKIP_BROWSER=1")
    assert "apt-get" not in commands
    assert "are NOT run" in commands
    assert '-m devtools test -n 2 --dist worksteal -m "not browser and not cluster"' in commands
