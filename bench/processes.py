"""The orchestrator's child processes: started in their own process group, logged, always stopped.

Each child gets a session of its own, so a Ctrl-C in the terminal reaches only the orchestrator,
which then stops the children in order with bounded waits (SIGTERM, then SIGKILL of the group).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any, Self

import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
STOP_SECONDS = 8.0


class ChildError(RuntimeError):
    """A child process died or did not answer; the message ends with the tail of its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """One process, its output in a log file."""

    def __init__(self, name: str, command: Sequence[str], env: dict[str, str], log_dir: Path, **popen: Any) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            list(command), cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, stderr=self._log,
            stdout=popen.pop("stdout", self._log), start_new_session=True, **popen,
        )  # fmt: skip
        self.ps = psutil.Process(self.process.pid)

    def stopped_by(self, stack: ExitStack) -> Self:
        """Register this child's stop with `stack` (children stop in reverse order of start)."""
        stack.callback(self.stop)
        return self

    def alive(self) -> bool:
        return self.process.poll() is None

    def check(self) -> None:
        if not self.alive():
            raise ChildError(f"{self.name} exited with code {self.process.returncode}\n{self.tail()}")

    def tail(self, lines: int = 25) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"  {self.name}| {line}" for line in text)

    def wait_for_log(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first log line matching `pattern` (the child said it is ready)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if match := re.search(pattern, self.log_path.read_text(errors="replace")):
                return match
            self.check()
            time.sleep(0.1)
        raise ChildError(f"{self.name} did not log {pattern!r} within {timeout:.0f} s\n{self.tail()}")

    def wait_for_http(self, port: int, path: str | None = "/healthz", timeout: float = 60) -> None:
        """Until GET `path` answers 200 (None: until the port accepts connections)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            try:
                if path is None:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    return
                request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": "localhost"})
                with urllib.request.urlopen(request, timeout=1):  # noqa: S310 (loopback only)
                    return
            except OSError:  # refused, or not 200 yet (HTTPError)
                time.sleep(0.1)
        raise ChildError(f"{self.name} did not answer on port {port} within {timeout:.0f} s\n{self.tail()}")

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """SIGTERM, then SIGKILL of its whole process group after `timeout` seconds."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                print(f"  {self.name} ignored SIGTERM for {timeout:.0f} s: killing it")
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=timeout)
        self._log.close()


class Controlled(Child):
    """A child driven by JSON lines (bench.wire): `request` sends a command and waits for its answer."""

    def __init__(self, name: str, command: Sequence[str], env: dict[str, str], log_dir: Path) -> None:
        super().__init__(name, command, env, log_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._answers: queue.Queue[bytes] = queue.Queue()
        self._stdin: IO[bytes] = self.process.stdin  # type: ignore[assignment]  # PIPE: never None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            self._answers.put(line)
        self._answers.put(b"")

    def request(self, cmd: str, timeout: float = 60, **args: Any) -> dict[str, Any]:
        self.send(cmd, **args)
        return self.answer(cmd, timeout)

    def send(self, cmd: str, **args: Any) -> None:
        """Send a command without waiting: `answer` collects its answer later."""
        with contextlib.suppress(BrokenPipeError):  # it died: `answer` says so, with its log
            self._stdin.write(orjson.dumps({"cmd": cmd, **args}) + b"\n")
            self._stdin.flush()

    def answer(self, cmd: str, timeout: float = 60) -> dict[str, Any]:
        try:
            line = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise ChildError(f"{self.name} did not answer {cmd!r} within {timeout:.0f} s\n{self.tail()}") from None
        if not line:
            self.process.wait(timeout=STOP_SECONDS)
            raise ChildError(f"{self.name} exited during {cmd!r} (code {self.process.returncode})\n{self.tail()}")
        answer: dict[str, Any] = orjson.loads(line)
        if not answer.pop("ok"):
            raise ChildError(f"{self.name} refused {cmd!r}: {answer.get('error')}")
        return answer

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        if self.alive():
            try:
                self._stdin.close()  # its command loop ends: it exits by itself
                self.process.wait(timeout=2)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                pass
        super().stop(timeout)


def python_module(module: str, *args: str) -> list[str]:
    return [PYTHON, "-m", module, *args]
