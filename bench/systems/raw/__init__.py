"""`raw`: the plain `websockets` broadcast server (bench.systems.raw.server), the Python floor."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from bench.processes import Child, free_port, python_module
from bench.systems import Anonymous, Context, Running
from bench.systems.ticks import SUBSCRIBED


class Raw(Anonymous):
    name: str = "raw"

    @contextmanager
    def start(self, context: Context) -> Iterator[Running]:
        port = free_port()
        command = python_module("bench.systems.raw.server", "--port", str(port), "--redis-url", context.redis_url,
                                "--channel", context.channel)  # fmt: skip
        with ExitStack() as stack:
            server = Child("raw-server", command, dict(os.environ), context.log_dir).stopped_by(stack)
            server.wait_for_log(SUBSCRIBED, timeout=self.START_SECONDS)
            yield Running(port, [server])
