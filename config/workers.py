"""`python -m config.server --workers N`: one web process per core behind one port.

Each worker is a whole `config.server` of its own (its event loop, stream hub, leases' heartbeat and
send clock), listening on the same address with SO_REUSEPORT: the kernel spreads new connections
over the workers by a hash of the client's address and port. Nothing is shared between workers but
PostgreSQL and Redis, as between the processes of a cluster, so Redis is required.

The supervisor (this module, the process the operator started) holds the port, starts the workers,
restarts a worker that dies, and on SIGTERM/SIGINT stops them all (each closes its websockets with
1012, as one server does). A worker that keeps dying at start-up stops everything with an error
rather than looping. Should the supervisor itself be killed, the kernel sends each worker SIGTERM.

A scrape of `/metrics` through the shared port reaches one worker; with `WEB_WORKER_PORTS_FROM=P`
worker i also listens on port P+i (same host), so Prometheus can scrape each worker by itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("tickerdeck.workers")

STOP_SECONDS = 20.0  # a worker closing thousands of websockets takes a few seconds
EARLY_EXIT_SECONDS = 10.0  # a worker that dies sooner than this after its start "failed to start"
EARLY_EXITS_TO_GIVE_UP = 3
POLL_SECONDS = 0.2
PR_SET_PDEATHSIG = 1


def default_workers() -> int:
    """One per core this process may run on."""
    return len(os.sched_getaffinity(0))


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound, not listening, SO_REUSEPORT socket: it holds the port (and resolves port 0) for the
    workers, which bind the same address themselves; being unlistened, it takes no connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def die_with_parent(parent_pid: int) -> None:
    """In a worker: SIGTERM when the supervisor dies (Linux), and exit now if it is already gone."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        sys.exit("config.server worker: its supervisor is gone")


@dataclass
class Worker:
    index: int
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    early_exits: int = 0

    def start(self) -> None:
        self.process = subprocess.Popen(self.command)
        self.started = time.monotonic()

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()


@dataclass
class Supervisor:
    workers: list[Worker]
    stopping: bool = False
    failed: bool = field(default=False)

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop_signal)
        for worker in self.workers:
            worker.start()
        while not self.stopping:
            time.sleep(POLL_SECONDS)
            for worker in self.workers:
                code = worker.exited()
                if code is not None and not self.stopping:
                    self._exited(worker, code)
        self._stop_all()
        return 1 if self.failed else 0

    def _stop_signal(self, signum: int, _frame: object) -> None:
        logger.info("Stopping %d workers (%s).", len(self.workers), signal.Signals(signum).name)
        self.stopping = True

    def _exited(self, worker: Worker, code: int) -> None:
        early = time.monotonic() - worker.started < EARLY_EXIT_SECONDS
        worker.early_exits = worker.early_exits + 1 if early else 0
        if worker.early_exits >= EARLY_EXITS_TO_GIVE_UP:
            logger.error("Worker %d exited (code %s) %d times within %.0f s of its start: stopping the "
                         "others.", worker.index, code, worker.early_exits, EARLY_EXIT_SECONDS)  # fmt: skip
            self.failed = self.stopping = True
            return
        logger.error("Worker %d exited (code %s): starting it again.", worker.index, code)
        worker.start()

    def _stop_all(self) -> None:
        for pid in processes_stop([w.process for w in self.workers if w.process is not None], STOP_SECONDS):
            logger.error("Worker process %d did not stop within %.0f s: killed.", pid, STOP_SECONDS)


def processes_stop(processes: Sequence[subprocess.Popen[Any]], grace: float) -> list[int]:
    """SIGTERM to each one still running, then SIGKILL to those still running `grace` seconds later (one
    deadline for all); the pids that had to be killed."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    killed = []
    for process in running:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            killed.append(process.pid)
    return killed


def supervise(host: str, port: int, workers: int, worker_args: Sequence[str]) -> int:
    """Hold the port, run `workers` workers on it, restart those that die; return the exit code."""
    if not os.environ.get("REDIS_URL"):
        logger.error("--workers %d needs REDIS_URL: without Redis each process would keep its own stream "
                     "leases, and an organisation could open its plan's streams once per worker.", workers)  # fmt: skip
        return 2
    held = reserve_port(host, port)
    port = held.getsockname()[1]
    parent = str(os.getpid())
    command = [sys.executable, "-m", "config.server", "--host", host, "--port", str(port), *worker_args]
    supervisor = Supervisor([Worker(i, [*command, "--worker-of", parent, "--worker-index", str(i)])
                             for i in range(workers)])  # fmt: skip
    logger.info("Serving on http://%s:%d with %d workers (one process each, SO_REUSEPORT).", host, port, workers)
    try:
        return supervisor.run()
    finally:
        held.close()
