"""Real server processes for end-to-end tests: uvicorn and run_feed against the test database."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings as django_settings
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
    # The servers share this run's Redis namespace (keys, channel names, the feed lock).
    env["TEST_REDIS_NAMESPACE"] = django_settings.TEST_REDIS_NAMESPACE
    env["TEST_SERVER_PROCESS"] = "1"  # a database pool, as in production (config/settings/test.py)
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


def wait_until_ready(port: int, process: subprocess.Popen[Any] | None = None, seconds: float = 60) -> None:
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


class ProcessOutput:
    """What a child process prints (stdout and stderr merged), collected by a reader thread.

    The pipe is always drained, so a chatty process never blocks on a full pipe; with `echo` the
    lines are also written to this process's stderr (pytest shows them when a test fails).
    """

    def __init__(self, stream: IO[str], *, echo: bool = False) -> None:
        self.lines: list[str] = []
        self.ended = False
        self._echo = echo
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            if self._echo:
                sys.stderr.write(line)
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def search(self, pattern: str) -> re.Match[str] | None:
        with self._changed:
            return next((m for line in self.lines if (m := re.search(pattern, line))), None)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first line matching `pattern`, waiting up to `timeout` seconds for it to be printed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if match := re.search(pattern, line):
                        return match
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if self.ended or left <= 0:
                    state = "the process ended" if self.ended else f"none within {timeout}s"
                    raise TimeoutError(f"no line matching {pattern!r} ({state}); output:\n{self.tail()}")
                self._changed.wait(left)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.lines[-lines:])


@dataclass
class LiveServer:
    port: int
    process: subprocess.Popen[Any]
    output: ProcessOutput | None = None

    def url(self, path: str = "/", host: str = "localhost") -> str:
        return f"http://{host}:{self.port}{path}"


def uvicorn_command(port: int, *extra: str) -> list[str]:
    """The product's own server entry point (uvicorn with bounded per-connection buffers), one process
    unless `extra` asks for workers (the suite runs many servers at once on two cores)."""
    workers = [] if "--workers" in extra else ["--workers", "1"]
    return [sys.executable, "-m", "config.server", "--host", "127.0.0.1", "--port", str(port), *workers, *extra]


@contextmanager
def uvicorn_server(**env_overrides: str) -> Iterator[LiveServer]:
    """A real uvicorn process serving config.asgi on a free loopback port (its output in `.output`)."""
    with uvicorn_process(env_overrides) as server:
        yield server


@contextmanager
def uvicorn_process(env_overrides: dict[str, str], *, echo: bool = True, port: int = 0) -> Iterator[LiveServer]:
    """A web process on `port` (a free one when 0), stopped with SIGTERM at the end."""
    port = port or free_port()
    env = server_environment(PORT=str(port), **env_overrides)
    with listening_process(uvicorn_command(port), port, env, echo=echo) as server:
        yield server


@contextmanager
def listening_process(
    command: list[str], port: int, env: dict[str, str] | None = None, *, echo: bool = True
) -> Iterator[LiveServer]:
    """A server process, yielded once it answers `/healthz` on `port`; stopped with SIGTERM at the end."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    output = ProcessOutput(process.stdout, echo=echo)
    try:
        wait_until_ready(port, process)
        yield LiveServer(port, process, output)
    finally:
        stop(process)


def stop(process: subprocess.Popen[Any], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if the process is still there after `timeout` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def record_figure(name: str, text: str) -> None:
    """Print a measured figure of a live test and append it to artifacts/live_figures.txt."""
    ARTIFACTS.mkdir(exist_ok=True)
    with (ARTIFACTS / "live_figures.txt").open("a") as figures:
        figures.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {name}: {text}\n")
    print(f"\n{name}: {text}")  # noqa: T201


# -- streaming: the settings every live streaming process gets, and the feed ------------------------

LIVE_STREAM_SETTINGS = {
    "STREAM_LEASE_SECONDS": "3",  # a killed process's stream leases lapse after 3 s
    "STREAM_SLOW_CONSUMER_SECONDS": "2",
    "STREAM_DELAY_MINUTE_SECONDS": "2",  # a plan's "minute" of delay lasts 2 s
    "SIMULATED_TICKS_PER_SECOND": "400",
    "SIMULATED_SEED": "1",
}
LEADER_WAIT_SECONDS = 15.0  # a killed leader's lock (TTL 3 s) may still be held when a test starts


def stream_key(name: str) -> str:
    """A streaming-state Redis key of this run's namespace, e.g. stream_key("feed:leader")."""
    return str(django_settings.STREAM_REDIS_PREFIX) + name


def stream_environment(**overrides: str) -> dict[str, str]:
    """Environment overrides for a live web or feed process (shortened time, fast seeded feed)."""
    if not os.environ.get("REDIS_URL"):
        raise RuntimeError("live streaming tests need REDIS_URL (several processes share the streaming state)")
    return {**LIVE_STREAM_SETTINGS, **overrides}


@dataclass
class FeedProcess:
    process: subprocess.Popen[str]
    output: ProcessOutput
    holder: str  # the lock holder id it printed ("Feed feed-… started")

    def has_led(self) -> bool:
        """Whether it has said that it leads (it may have stopped since)."""
        return self.output.search(rf"{self.holder} leads the feed") is not None

    def wait_leading(self, timeout: float = LEADER_WAIT_SECONDS) -> None:
        self.output.wait_for(rf"{self.holder} leads the feed", timeout)


@contextmanager
def feed_process(**env_overrides: str) -> Iterator[FeedProcess]:
    """`python manage.py run_feed` (leader or standby), stopped with SIGTERM at the end."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_feed"], cwd=ROOT, env=server_environment(**env_overrides),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    output = ProcessOutput(process.stdout, echo=True)
    try:
        started = output.wait_for(r"Feed (feed-[0-9a-f]+) started", timeout=60)
        yield FeedProcess(process, output, started.group(1))
    finally:
        stop(process)


@contextmanager
def feed_processes(count: int, **env_overrides: str) -> Iterator[list[FeedProcess]]:
    with ExitStack() as stack:
        yield [stack.enter_context(feed_process(**env_overrides)) for _ in range(count)]


def leader_among(feeds: list[FeedProcess], timeout: float = LEADER_WAIT_SECONDS) -> FeedProcess:
    """The one feed that says it leads (waiting for the lock to be taken)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaders = [feed for feed in feeds if feed.has_led()]
        if leaders:
            assert len(leaders) == 1, f"{len(leaders)} feeds lead at once"
            return leaders[0]
        time.sleep(0.1)
    raise TimeoutError(f"no feed took the lock within {timeout}s")


CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own browser download does not work here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]  # fmt: skip


@contextmanager
def chromium_page(timeout_ms: float = 20_000, **context: Any) -> Iterator[Page]:
    """A page in a fresh headless Chromium (own cookie jar), closed on exit.

    Playwright's sync API runs an event loop in this thread while it is open, and Django refuses
    database queries while one runs: open it only around the browser steps, not across a test's
    database set-up and teardown.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(**context)  # e.g. locale="de-DE"
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()
