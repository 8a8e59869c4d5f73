"""The systems under test, each started on loopback with the same tick channel and workload.

A system knows how to start its processes (server first, then its feed or bridge) and where one
planned stream connects to (host, path, cookie). `SYSTEMS` lists them in the order they run.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

from bench.processes import Child
from bench.workload import Stream


@dataclass(frozen=True)
class Context:
    """What every system gets from the run: services, the tick channel, a Redis namespace, logs."""

    run_id: str
    redis_url: str
    database_url: str
    channel: str  # the publisher's pub/sub channel
    redis_prefix: str  # every Redis key and channel name of this run starts with it
    log_dir: Path
    secret_key: str


@dataclass
class Running:
    """A started system: its port and processes (the web server first)."""

    port: int
    children: list[Child] = field(default_factory=list)

    @property
    def web(self) -> list[psutil.Process]:
        """The web server's processes: the one started, and its workers if it has any."""
        return process_tree(self.children[0].ps)

    @property
    def processes(self) -> list[psutil.Process]:
        return [process for child in self.children for process in process_tree(child.ps)]

    def check(self) -> None:
        """Raise ChildFailed (with the log's tail) if any of its processes has died."""
        for child in self.children:
            child.check()


def process_tree(process: psutil.Process) -> list[psutil.Process]:
    """A process and its descendants (a server's workers), as they are now."""
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:  # it is gone: whatever reads it sees nothing
        return [process]


@dataclass(frozen=True)
class Target:
    host: str
    path: str
    cookie: str = ""


class System(Protocol):
    name: str
    first_frame: str | None  # the message that completes a connect (None: the handshake itself)

    def start(self, context: Context) -> AbstractContextManager[Running]: ...

    def target(self, stream: Stream) -> Target: ...


def stream_path(stream: Stream) -> str:
    return "/ws/stock-market/?symbols=" + ",".join(stream.symbols)


class Anonymous:
    """A system without tenants or sign-in: every stream goes to localhost, naming its symbols."""

    first_frame: str | None = None
    START_SECONDS = 60.0

    def target(self, stream: Stream) -> Target:
        return Target("localhost", stream_path(stream))
