"""A connection's outgoing side: a conflating buffer (latest quote per symbol) and one sender task.

Quotes replace each other per symbol, so a slow reader always gets fresh prices and the buffer
never holds more than one quote per subscribed symbol. A connection may also cap how often each
symbol is sent (`throttle`): a held quote is replaced by newer ones and leaves once its symbol is
due. A client that leaves a frame unsent for `slow_after` seconds (its socket buffer stayed full:
it stopped reading) is reported as slow.

Every sender of a process shares one SendClock:
- quote frames leave on its ticks: every quote that arrives before the next tick joins the same
  frame. A frame costs the same whatever it carries (an ASGI send, the websocket framing, a system
  call), so under load a connection sends one frame per tick with several quotes, instead of one
  frame per quote. One timer serves every sender, and a sender task wakes once per frame. The web
  processes' clock has no interval of its own: the feed already gathers each organisation's quotes
  into one message per window (STREAM_FRAME_MS), so a tick comes as soon as the messages at hand are
  fanned out, and a quote waits for one window, not for a window and then a tick;
- its patrol finds sends that stay blocked, so no frame pays for a timer of its own.
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from .metrics import STREAM_COUNTS
from .quotes import update_frame, update_payload, websocket_text_frame

logger = logging.getLogger(__name__)

WATCH_INTERVAL_SECONDS = 0.25


class SendClock:
    """The frame tick and the blocked-send patrol; timers run only while someone needs them."""

    def __init__(self, frame_interval: float = 0.0) -> None:
        """`frame_interval`: seconds from a sender's first quote to its tick; 0, the tick comes once
        the event loop has run what is ready now (every message already received is fanned out)."""
        self.frame_interval = frame_interval
        self._due: list[ConflatingSender] = []
        # When the feed published the batch being fanned out now (wall clock): rooms set it before
        # offering its quotes, so a sender knows how old the oldest quote it holds is.
        self.batch_published_at = 0.0
        self._tracked = 0  # started senders not yet stopped: the patrol runs while there are any
        self.sending: set[ConflatingSender] = set()  # senders in a send now: what the patrol looks at
        self._patrol: asyncio.Task[None] | None = None
        self._frames: dict[tuple[bytes, ...], bytes] = {}  # this tick's frames, by the quotes they carry

    def schedule(self, sender: "ConflatingSender") -> None:
        """Wake `sender` at the next tick (the caller schedules each sender once per tick)."""
        if not self._due:
            if self.frame_interval:
                asyncio.get_running_loop().call_later(self.frame_interval, self._fire)
            else:
                asyncio.get_running_loop().call_soon(self._fire)
        self._due.append(sender)

    def _fire(self) -> None:
        due, self._due = self._due, []
        self._frames.clear()
        for sender in due:
            sender.tick()

    def frame(self, quotes: list[bytes]) -> bytes:
        """The websocket frame of an update with these quotes, built once per tick: connections sent
        the same quotes in the same tick (same room, same symbols) share it."""
        key = tuple(quotes)
        frame = self._frames.get(key)
        if frame is None:
            frame = self._frames[key] = websocket_text_frame(update_payload(quotes))
        return frame

    def track(self) -> None:
        self._tracked += 1
        if self._patrol is None or self._patrol.done():
            self._patrol = asyncio.create_task(self._patrol_blocked_sends(), name="send-clock-patrol")

    def untrack(self, sender: "ConflatingSender") -> None:
        self._tracked -= 1
        self.sending.discard(sender)

    async def _patrol_blocked_sends(self) -> None:
        """Only the senders in a send are looked at: an idle connection costs the patrol nothing."""
        loop = asyncio.get_running_loop()
        while self._tracked:
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
            now = loop.time()
            for sender in list(self.sending):
                sender.check_blocked(now)


class ConflatingSender:
    def __init__(
        self,
        send_text: Callable[[str], Awaitable[None]],
        on_slow: Callable[[], Coroutine[Any, Any, None]],
        *,
        slow_after: float,
        clock: SendClock,
        on_failed: Callable[[], Coroutine[Any, Any, None]] | None = None,
        write_now: Callable[[bytes], bool] | None = None,
    ) -> None:
        """`write_now`: writes a whole ready-made frame to the socket if it can take it at once, else
        returns False (config.server's `tickerdeck.write_frame` scope extension); frames written
        through it are counted here, those sent through `send_text` by its owner."""
        self._send_text = send_text
        self._write_now = write_now
        self._on_slow: Callable[[], Coroutine[Any, Any, None]] | None = on_slow
        self._on_failed = on_failed
        self._slow_after = slow_after
        self._clock = clock
        self._pending: dict[str, bytes] = {}
        self._messages: deque[str] | None = None  # made on the first message (most connections get none)
        self._scheduled = False  # waiting for the clock's next tick
        self._due = False  # the tick came: pending quotes may go
        # Sends what a tick could not write at once and protocol messages; it exists only while there
        # is some to send (most connections have none most of the time: no task, no frames held).
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._broken = False  # a send failed, or stayed blocked: nothing more is sent
        self._sending_since: float | None = None
        self._slow_task: asyncio.Task[None] | None = None
        self._min_interval = 0.0  # the throttle: seconds between two quotes of one symbol (0: none)
        self._last_sent: dict[str, float] = {}
        self._hold_timer: asyncio.TimerHandle | None = None
        self._oldest_published_at = 0.0  # of the quotes pending since the last frame
        self._stopped = False

    def start(self) -> None:
        self._started = True
        self._clock.track()
        self._wake()  # what was queued before (the snapshot's messages, a tick)

    async def stop(self) -> None:
        STREAM_COUNTS.dropped += len(self._pending)
        self._pending = {}
        if self._started and not self._stopped:
            self._clock.untrack(self)
        self._stopped = True
        if self._hold_timer is not None:
            self._hold_timer.cancel()
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # The callbacks are the connection's own methods: kept, they would hold the connection, which
        # holds this sender, in a cycle that only a full garbage collection frees (rare: gc_tune), so a
        # web process churning connections grew by ~110 objects per closed connection (make soak).
        self._send_text = self._write_nothing
        self._on_slow = self._on_failed = None
        self._write_now = None

    @staticmethod
    async def _write_nothing(text: str) -> None:
        return None

    def throttle(self, max_per_second: int) -> None:
        """Send each symbol at most `max_per_second` times a second (the latest quote, when it is due)."""
        self._min_interval = 1.0 / max_per_second if max_per_second > 0 else 0.0

    def offer(self, symbol: str, encoded: bytes) -> None:
        """Queue a quote, replacing any unsent one of the same symbol; it leaves at the next tick.

        A throttled symbol that is not due yet waits for the hold timer, which wakes the sender when
        the earliest held symbol is due: a quote that cannot leave costs no wake-up of the sender
        (most quotes of a fast symbol at one update a second, and a wake-up costs what a frame does).
        """
        pending = self._pending
        if not pending:
            self._oldest_published_at = self._clock.batch_published_at
        elif symbol in pending:
            STREAM_COUNTS.conflated += 1
        pending[symbol] = encoded
        if self._min_interval:
            last = self._last_sent.get(symbol)
            if last is not None:
                due_at = last + self._min_interval
                if asyncio.get_running_loop().time() < due_at:
                    self._hold_until(due_at)
                    return
        if not self._scheduled:
            self._scheduled = True
            self._clock.schedule(self)

    def tick(self) -> None:
        """The clock's tick: pending quotes may go now.

        Straight from the tick when the connection can take a frame at once (`write_now`: the server's
        socket is open and writable) and nothing else is on its way: the tick's shared frame is written
        without waking the sender task, the ASGI layer or a websocket framing of its own. Otherwise
        (a send under way, protocol messages queued, a throttle, a full socket) the task sends them.
        """
        self._scheduled = False
        # Not before start(): the connection's snapshot goes first, and quotes offered meanwhile wait.
        # Not after stop() began: the connection is closing (its place may be given back already).
        write_now = self._write_now
        if (
            write_now is not None
            and self._pending
            and self._started
            and not self._stopped
            and self._task is None
            and not self._broken
            and not self._messages
            and not self._min_interval
        ):
            quotes = list(self._pending.values())
            if write_now(self._clock.frame(quotes)):
                self._pending = {}
                STREAM_COUNTS.frames_out += 1  # a frame sent through `send_text` is counted by its owner
                self._counted(quotes)
                return
        self._due = True
        self._wake()

    def _symbol_due(self, symbol: str, now: float) -> bool:
        last = self._last_sent.get(symbol)
        return last is None or now - last >= self._min_interval

    def _hold_until(self, due_at: float) -> None:
        """Wake the sender at `due_at`, unless the hold timer already wakes it earlier."""
        timer = self._hold_timer
        if timer is not None:
            if timer.when() <= due_at:
                return
            timer.cancel()
        self._hold_timer = asyncio.get_running_loop().call_at(due_at, self._hold_expired)

    def _hold_expired(self) -> None:
        self._hold_timer = None
        self.tick()

    def drop(self, symbols: set[str]) -> None:
        """Forget unsent quotes of symbols the connection no longer follows."""
        for symbol in symbols:
            if self._pending.pop(symbol, None) is not None:
                STREAM_COUNTS.dropped += 1
            self._last_sent.pop(symbol, None)

    def message(self, text: str) -> None:
        """Queue a protocol message: it leaves at once, before any pending quotes."""
        if self._messages is None:
            self._messages = deque(maxlen=256)
        self._messages.append(text)
        self._wake()

    def _wake(self) -> None:
        """Start the sender task unless it runs (it then finds the new work before it ends) or may not."""
        if self._task is None and self._started and not self._stopped and not self._broken:
            self._task = asyncio.create_task(self._run())

    @property
    def pending_quotes(self) -> int:
        return len(self._pending)

    def check_blocked(self, now: float) -> None:
        """Called by the clock's patrol: a send blocked past `slow_after` stops this sender, once."""
        since = self._sending_since
        if since is None or now - since < self._slow_after or self._slow_task is not None:
            return
        logger.info("closing a slow consumer: a frame stayed unsent for %.0f s", now - since)
        self._broken = True
        if self._task is not None:
            self._task.cancel()
        if self._on_slow is not None:
            self._slow_task = asyncio.create_task(self._on_slow())

    async def _run(self) -> None:
        try:
            await self._send_loop()
        except Exception as exc:
            self._broken = True
            # A send that raised leaves a connection that can send nothing more: report it (from a
            # task of its own, since the handler stops this one).
            if isinstance(exc, OSError):  # the server's ClientDisconnected: the client is gone
                logger.debug("sender stopped: the client disconnected")
            else:
                logger.exception("sender stopped: a send failed")
            if self._on_failed is not None and self._slow_task is None:
                self._slow_task = asyncio.create_task(self._on_failed())
        finally:
            self._task = None

    async def _send_loop(self) -> None:
        """Until nothing is left: no await between the last look and the task's end, so no wake-up is lost."""
        loop = asyncio.get_running_loop()
        while self._messages or self._due:
            while self._messages:
                await self._deliver(loop, self._messages.popleft())
            if self._due:
                self._due = False
                if self._pending:
                    quotes = self._due_quotes(loop.time()) if self._min_interval else self._take_all()
                    if quotes:
                        await self._deliver_quotes(loop, quotes)

    def _take_all(self) -> list[bytes]:
        quotes, self._pending = self._pending, {}
        return list(quotes.values())

    def _due_quotes(self, now: float) -> list[bytes]:
        """The throttled path: quotes of symbols that are due; the others wait for the hold timer."""
        due = [symbol for symbol in self._pending if self._symbol_due(symbol, now)]
        quotes = [self._pending.pop(symbol) for symbol in due]
        for symbol in due:
            self._last_sent[symbol] = now
        if self._pending:
            self._hold_until(min(self._last_sent[s] for s in self._pending) + self._min_interval)
        return quotes

    async def _deliver_quotes(self, loop: asyncio.AbstractEventLoop, quotes: list[bytes]) -> None:
        published_at = self._oldest_published_at
        await self._deliver(loop, update_frame(quotes))
        self._counted(quotes, published_at)

    def _counted(self, quotes: list[bytes], published_at: float | None = None) -> None:
        counts = STREAM_COUNTS
        counts.quotes_out += len(quotes)
        if not self._min_interval:
            counts.latency_observe(time.time() - (self._oldest_published_at if published_at is None else published_at))

    async def _deliver(self, loop: asyncio.AbstractEventLoop, text: str) -> None:
        self._sending_since = loop.time()
        sending = self._clock.sending
        sending.add(self)
        await self._send_text(text)
        sending.discard(self)
        self._sending_since = None
