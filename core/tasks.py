"""Stopping asyncio tasks for sure.

On Python 3.11, `asyncio.wait_for` returns the result of the call it waits for, instead of raising
CancelledError, when that call finishes in the same turn of the event loop as the cancellation
(CPython gh-86296, fixed in 3.12 by a new `wait_for`). redis-py sends every command through
`wait_for` when a socket timeout is set, so a task cancelled during a Redis call can lose its
cancellation and go on running: a feed's leadership task that keeps renewing the lock after the feed
stopped leading (no standby can take over), a room's reader that never ends (its close waits forever).
`cancel_until_done` repeats the cancellation until the tasks have ended.
"""

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

# A task still running this long after its cancellation is cancelled again; long enough for the
# short clean-ups tasks do when cancelled (a socket's close), short next to the callers' bounds.
RECANCEL_SECONDS = 0.25


async def cancel_until_done(tasks: Iterable["asyncio.Task[Any]"], within: float) -> set["asyncio.Task[Any]"]:
    """Cancel the tasks, and again each RECANCEL_SECONDS while any still runs; wait at most `within`
    seconds. Returns the tasks still running then (the caller logs them: it must not wait forever)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_SECONDS, left))
    return pending


def where(task: "asyncio.Task[Any]") -> str:
    """A task's name and the lines its chain of coroutines waits at: what a task that will not stop is doing."""
    lines: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(lines) < 20:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
        if frame is not None:
            lines.append(f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
    return f"{task.get_name()} at {' > '.join(lines) or 'no frame'}"
