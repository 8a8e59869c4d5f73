"""The suite only ever runs against a test database, even when one file is run alone."""

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_this_run_uses_a_test_database() -> None:
    assert str(connection.settings_dict["NAME"]).startswith("test_")


@pytest.mark.live
def test_a_file_of_committed_row_tests_run_alone_sets_up_its_own_test_database() -> None:
    """Those tests use committed rows, not pytest-django's `db`; alone, they once ran on DATABASE_URL's own
    database. Here they run in a child pytest whose DATABASE_URL names a database that does not exist:
    only a run that creates its own `test_` database can pass."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    env = {**os.environ, "DATABASE_URL": urlunsplit(parts._replace(path="/td_suite_alone_probe"))}
    env.pop("TEST_REDIS_NAMESPACE", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "tests/streaming/test_consumer_release.py", "-k", "key_rotation"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout


def test_no_test_flushes_the_database() -> None:
    """`transaction=True` (or `transactional_db`) makes pytest-django empty every table after the test:
    the seeded plans and symbol directory would be gone for the later tests of that worker (a CI run
    had 409 of them fail). Committed rows are made and removed by the tests themselves instead."""
    root = Path(__file__).resolve().parent
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name != Path(__file__).name
        and re.search(r"transaction\s*=\s*True|transactional_db|TransactionTestCase", path.read_text())
    ]
    assert offenders == []
