"""A connection's outgoing side: a conflating buffer (latest quote per symbol) and one sender task.

Quotes replace each other per symbol, so a slow reader always gets fresh prices and the buffer
never holds more than one quote per subscribed symbol. A client that leaves a frame unsent for
`slow_after` seconds (its socket buffer stayed full: it stopped reading) is reported as slow.

Quote frames leave on the ticks of the process's FrameClock: every quote that arrives before the
next tick joins the same frame. A frame costs the same whatever it carries (an ASGI send, the
websocket framing, a system call), so under load a connection sends at most one frame per tick
with several quotes, instead of one frame per quote; and one timer wakes every sender at once.
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from .quotes import quotes_frame

logger = logging.getLogger(__name__)


class FrameClock:
    """A shared tick for every sender of the process; its timer runs only while someone waits."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._tick = asyncio.Event()
        self._armed = False

    async def next_tick(self) -> None:
        if not self._armed:
            self._armed = True
            asyncio.get_running_loop().call_later(self.interval, self._fire)
        await self._tick.wait()

    def _fire(self) -> None:
        # set() resolves every current waiter; clear() at once makes later callers wait for the next.
        self._armed = False
        self._tick.set()
        self._tick.clear()


class ConflatingSender:
    def __init__(
        self,
        send_text: Callable[[str], Awaitable[None]],
        on_slow: Callable[[], Awaitable[None]],
        *,
        slow_after: float,
        clock: FrameClock | None = None,
    ) -> None:
        self._send_text = send_text
        self._on_slow = on_slow
        self._slow_after = slow_after
        self._clock = clock
        self._pending: dict[str, bytes] = {}
        self._messages: deque[str] = deque(maxlen=256)
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def offer(self, symbol: str, encoded: bytes) -> None:
        """Queue a quote, replacing any unsent one of the same symbol."""
        self._pending[symbol] = encoded
        self._wakeup.set()

    def drop(self, symbols: set[str]) -> None:
        """Forget unsent quotes of symbols the connection no longer follows."""
        for symbol in symbols:
            self._pending.pop(symbol, None)

    def message(self, text: str) -> None:
        """Queue a protocol message (sent before any pending quotes)."""
        self._messages.append(text)
        self._wakeup.set()

    @property
    def pending_quotes(self) -> int:
        return len(self._pending)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._messages:
                if not await self._deliver(self._messages.popleft()):
                    return
            if self._pending and self._clock is not None:
                await self._clock.next_tick()
            if self._pending:
                quotes, self._pending = self._pending, {}
                if not await self._deliver(quotes_frame("quotes", list(quotes.values()))):
                    return

    async def _deliver(self, text: str) -> bool:
        try:
            async with asyncio.timeout(self._slow_after):
                await self._send_text(text)
        except TimeoutError:
            logger.info("closing a slow consumer: a frame stayed unsent for %.0f s", self._slow_after)
            await self._on_slow()
            return False
        return True
