"""Real server processes for end-to-end tests: uvicorn (and later run_feed) against the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from django.db import connection

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"  # screenshots and timings of end-to-end runs (git-ignored)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_database_url() -> str:
    """DATABASE_URL, pointed at the database pytest-django created for this run.

    pytest-django creates the test database only when a selected test is marked `django_db` (or
    uses `db`); otherwise the name is still the development database's, which a live server must
    never write to, so that is refused.
    """
    name = str(connection.settings_dict["NAME"])
    if not name.startswith("test_"):
        raise RuntimeError(f"no test database set up (the database is {name!r}): mark the live test django_db")
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + name))


def server_environment(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.test", "PYTHONUNBUFFERED": "1"})
    env.update(overrides)
    if "DATABASE_URL" not in overrides:
        env["DATABASE_URL"] = test_database_url()
    return env


def http_get(port: int, path: str, host: str = "localhost", timeout: float = 5) -> tuple[int, str]:
    """GET http://127.0.0.1:<port><path> with a Host header (no DNS needed for *.localhost)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": f"{host}:{port}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback only)
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def wait_until_ready(port: int, process: subprocess.Popen[bytes] | None = None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before it was ready")
        try:
            if http_get(port, "/healthz", timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"server on port {port} not ready after {seconds}s")


@dataclass
class LiveServer:
    port: int
    process: subprocess.Popen[bytes]

    def url(self, path: str = "/", host: str = "localhost") -> str:
        return f"http://{host}:{self.port}{path}"


@contextmanager
def uvicorn_server(**env_overrides: str) -> Iterator[LiveServer]:
    """A real uvicorn process serving config.asgi on a free loopback port."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port",
               str(port), "--no-access-log", "--lifespan", "off", "--ws-per-message-deflate", "false"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=server_environment(PORT=str(port), **env_overrides))
    try:
        wait_until_ready(port, process)
        yield LiveServer(port, process)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own browser download does not work here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]  # fmt: skip


@contextmanager
def chromium_page(timeout_ms: float = 20_000) -> Iterator[Page]:
    """A page in a fresh headless Chromium (own cookie jar), closed on exit.

    Playwright's sync API runs an event loop in this thread while it is open, and Django refuses
    database queries while one runs: open it only around the browser steps, not across a test's
    database set-up and teardown.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()
