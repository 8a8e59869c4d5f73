"""`naive`: uvicorn serving a tiny Channels app (group per symbol, core Redis layer) and its bridge."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from bench.processes import Child, free_port, python_module
from bench.systems import Anonymous, Context, Running
from bench.systems.ticks import SUBSCRIBED


class Naive(Anonymous):
    name: str = "naive"

    @contextmanager
    def start(self, context: Context) -> Iterator[Running]:
        port = free_port()
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.systems.naive.settings",
               "NAIVE_REDIS_URL": context.redis_url,
               "NAIVE_CHANNEL_PREFIX": context.redis_prefix + "naive"}  # fmt: skip
        server_command = python_module(
            "uvicorn", "bench.systems.naive.asgi:application", "--host", "127.0.0.1", "--port", str(port),
            "--ws", "websockets-sansio", "--ws-per-message-deflate", "false", "--lifespan", "off",
            "--no-access-log", "--log-level", "warning", "--backlog", "4096",
        )  # fmt: skip
        bridge_command = python_module("bench.systems.naive.bridge", "--redis-url", context.redis_url,
                                       "--channel", context.channel)  # fmt: skip
        with ExitStack() as stack:
            server = Child("naive-server", server_command, env, context.log_dir).stopped_by(stack)
            server.wait_for_http(port, None, timeout=self.START_SECONDS)  # the app serves websockets only
            bridge = Child("naive-bridge", bridge_command, env, context.log_dir).stopped_by(stack)
            bridge.wait_for_log(SUBSCRIBED, timeout=self.START_SECONDS)
            yield Running(port, [server, bridge])
