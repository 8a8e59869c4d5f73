"""The machine's other load: CPU used during a window by processes that are not the bench's.

Two cores hold the load client, the publisher, Redis, PostgreSQL and the system under test; any
other process's CPU (another engineer's test suite, a build) lowers what the system gets. Each
window records it, and a step where it passed `NOISY_PCT` (10 % of one core) is flagged `noisy`,
so a figure made on a busy machine shows as such rather than as the product's.

A virtual machine's CPUs may also be lent to other guests by the host ("steal" time, /proc/stat): that
counts as other load too.

The bench's own: this process and its descendants (the client, the publisher, the systems and their
workers), Redis (its only server is the one the bench uses), and the PostgreSQL backends of the
bench's database. Other databases' backends and PostgreSQL's own background processes count as
other load. A process that starts and ends within a window is not seen.
"""

from __future__ import annotations

import contextlib
import os
from urllib.parse import urlsplit

import psutil

NOISY_PCT = 10.0  # of one core


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class OtherLoad:
    """`start()` then `percent(wall)`: the other processes' CPU over the window, 100 % = one core."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._before: dict[tuple[int, float], float] = {}
        self._steal_before = 0.0

    @classmethod
    def of(cls, database_url: str) -> OtherLoad:
        """For the bench whose database is at `database_url`."""
        return cls(urlsplit(database_url).path.lstrip("/"))

    def _ours(self, process: psutil.Process, tree: set[int]) -> bool:
        if process.pid in tree:
            return True
        name = process.name()
        if name.startswith("redis-server"):
            return True
        return name.startswith("postgres") and f" {self.database} " in " ".join(process.cmdline()) + " "

    def _snapshot(self) -> dict[tuple[int, float], float]:
        me = psutil.Process(os.getpid())
        tree = {me.pid, *(child.pid for child in me.children(recursive=True))}
        found: dict[tuple[int, float], float] = {}
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if not self._ours(process, tree):
                    found[(process.pid, process.create_time())] = _cpu(process)
        return found

    def start(self) -> None:
        self._before = self._snapshot()
        self._steal_before = _steal_seconds()

    def percent(self, wall: float) -> float:
        """CPU of other processes since `start()`, and the time the hypervisor gave this machine's CPUs
        to other guests (steal): neither went to the bench. One process started since counts from its
        start."""
        after = self._snapshot()
        used = sum(cpu - self._before.get(key, 0.0) for key, cpu in after.items())
        used += max(_steal_seconds() - self._steal_before, 0.0)
        return round(100 * max(used, 0.0) / wall, 1) if wall > 0 else 0.0


def _steal_seconds() -> float:
    """CPU time stolen by the hypervisor from every CPU of this (virtual) machine since boot; 0 on a
    machine that does not report it."""
    try:
        return float(psutil.cpu_times().steal)  # Linux only
    except AttributeError:
        return 0.0
