"""One load at a time per key, for caches read on the event loop.

A connect storm brings a hundred connects of the same organisation (or the same member) at once; when
their cache entry is missing or just expired, each would run the same database read in a thread of
its own. `InFlight.get` lets the first run it; the others wait for it and read the cache it filled.
"""

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class InFlight:
    """The loads under way in this process, by key (each in its event loop)."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[Any]] = {}

    async def get(self, key: Hashable, cached: Callable[[], tuple[bool, T]], load: Callable[[], Awaitable[T]]) -> T:
        """`cached()`'s value if it has one (`(True, value)`); else, once a load of `key` under way has
        ended (whatever its outcome), `cached()` again; else `load()`'s, which later callers wait for.

        A failed or cancelled load fails (or cancels) only its own caller; those waiting on it then
        load for themselves.
        """
        found, value = cached()
        if found:
            return value
        running = self._running.get(key)
        if running is not None and running.get_loop() is asyncio.get_running_loop():
            await asyncio.wait([running])
            found, value = cached()
            if found:
                return value
        future = asyncio.ensure_future(load())
        self._running[key] = future
        future.add_done_callback(lambda done: self._forget(key, done))
        return await future

    def _forget(self, key: Hashable, done: "asyncio.Future[Any]") -> None:
        if self._running.get(key) is done:
            del self._running[key]
