"""JSON lines between the orchestrator and the processes it drives (publisher, load client).

A child reads one command per line on stdin and answers each with one line on stdout, in order;
stdin's end means the orchestrator is gone, and the child exits rather than linger as an orphan.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import orjson

Message = dict[str, Any]
Handler = Callable[[Message], Awaitable[Message]]
MAX_LINE_BYTES = 64 * 1024 * 1024  # a command may carry every connection's plan


def reply(message: Message) -> None:
    sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
    sys.stdout.buffer.flush()


async def serve(handlers: dict[str, Handler]) -> None:
    """Answer commands `{"cmd": name, ...}` one at a time until stdin closes or `quit` arrives."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = orjson.loads(line)
        name = command.pop("cmd")
        if name == "quit":
            reply({"ok": True})
            return
        handler = handlers.get(name)
        if handler is None:
            reply({"ok": False, "error": f"unknown command {name!r}"})
            continue
        reply({"ok": True, **await handler(command)})


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a child's main coroutine on uvloop (the event loop every bench process uses)."""
    import uvloop

    uvloop.run(main())
