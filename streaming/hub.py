"""The process's stream hub: one channel-layer subscription per organisation, fanned out locally.

Each organisation with connections in this process gets a room: one channel joined to the
organisation's quote and control groups (and to no other group), one receive task, and an index of
which local connection follows which symbol. The hub also tells the feed (through the watch
registry) which symbols each organisation follows, and keeps this process's stream leases alive.
"""

import asyncio
import itertools
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings

from core.tasks import cancel_until_done, where

from .access import plan_limits
from .feed_changes import MARKET_CHANGED, UNSERVED_CHANGED
from .groups import control_group, quotes_group
from .metrics import STREAM_COUNTS
from .sender import SendClock
from .state import LeaseKind, StreamState, Watch, stream_state

logger = logging.getLogger(__name__)

WATCH_SYNC_SECONDS = 0.05
WATCH_HEARTBEAT_SECONDS = 5.0
CLOSE_WAIT_SECONDS = 3.0
FEED_STATUS_CACHE_SECONDS = 1.0


class Connection(Protocol):
    """What the hub needs from a connection."""

    schema: str
    delay_minutes: int
    lease: tuple[LeaseKind, str, str] | None

    def offer(self, symbol: str, encoded: bytes) -> None: ...

    async def control(self, event: dict[str, Any]) -> None: ...

    async def abort(self) -> None:
        """Give the connection's place back and close it (it failed while handling a message)."""


class Room:
    """One organisation's connections in this process."""

    def __init__(self, hub: "StreamHub", schema: str) -> None:
        self.hub = hub
        self.schema = schema
        self.connections: set[Connection] = set()
        self.by_symbol: dict[str, set[Connection]] = defaultdict(set)
        self.channel = ""
        self.task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        layer = self.hub.layer
        self.channel = await layer.new_channel(prefix=f"hub.{self.schema}.")
        await self.join_groups()
        self.task = asyncio.create_task(self._receive(), name=f"room-{self.schema}")

    async def join_groups(self) -> None:
        for group in (quotes_group(self.schema), control_group(self.schema)):
            await self.hub.layer.group_add(group, self.channel)

    async def close(self) -> None:
        if self.task is not None and await cancel_until_done([self.task], CLOSE_WAIT_SECONDS):
            logger.warning("room %s: its reader still runs %s s after its cancellation", self.schema,
                           CLOSE_WAIT_SECONDS)  # fmt: skip
        for group in (quotes_group(self.schema), control_group(self.schema)):
            await self.hub.layer.group_discard(group, self.channel)

    async def _receive(self) -> None:
        """Quotes are fanned out here; control messages go to tasks of their own, so a slow or broken
        connection never holds up the room's quotes or another connection's control message."""
        while True:
            message = await self.hub.layer.receive(self.channel)
            if message.get("type") == "quotes.batch":
                self._fan_out(message["quotes"], message.get("published_at") or time.time())
            else:
                self.hub.spawn(self._control(message))

    async def _control(self, message: dict[str, Any]) -> None:
        if message.get("type") in (MARKET_CHANGED, UNSERVED_CHANGED):
            self.hub.feed_status_forget()  # the next snapshot in this process reads the status the feed just stored
        if message.get("type") == "plan.changed":
            # One database read for the whole room, not one per connection; should it fail, each
            # connection reads its limits itself (and closes if it cannot).
            try:
                limits = await database_sync_to_async(plan_limits, thread_sensitive=False)(
                    organisation_id=message["organisation_id"]
                )
                message = {**message, "limits": limits}
            except Exception:
                logger.exception("room %s could not read the new plan limits", self.schema)
        for connection in list(self.connections):
            self.hub.spawn(control_deliver(connection, message))

    def _fan_out(self, quotes: list[tuple[str, bytes]], published_at: float) -> None:
        STREAM_COUNTS.quotes_in += len(quotes)
        self.hub.clock.batch_published_at = published_at
        by_symbol = self.by_symbol
        for symbol, encoded in quotes:
            for connection in by_symbol.get(symbol, ()):
                try:
                    connection.offer(symbol, encoded)
                except Exception:
                    STREAM_COUNTS.dropped += 1
                    logger.exception("a connection of %s could not take a quote; closing it", self.schema)
                    self.hub.spawn(connection.abort())


async def control_deliver(connection: Connection, message: dict[str, Any]) -> None:
    """One connection handles one control message; if it fails, that connection (only) is closed."""
    try:
        await connection.control(message)
    except Exception:
        logger.exception(
            "a connection of %s failed on a %s message; closing it", connection.schema, message.get("type")
        )
        await connection.abort()


class StreamHub:
    def __init__(self, layer: BaseChannelLayer, state: StreamState) -> None:
        self.layer = layer
        self.state = state
        self.process_id = uuid.uuid4().hex
        self._lease_numbers = itertools.count()
        # No interval of its own: the feed's window (STREAM_FRAME_MS) already spaces an organisation's
        # messages, and what one message brings leaves in one frame per connection (streaming.sender).
        self.clock = SendClock()
        self.rooms: dict[str, Room] = {}
        self._room_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._watch_counts: Counter[Watch] = Counter()
        self._added: set[Watch] = set()
        self._removed: set[Watch] = set()
        self._dirty = asyncio.Event()
        self._spawned: set[asyncio.Task[None]] = set()
        self._feed_status: tuple[float, dict[str, Any] | None] = (-FEED_STATUS_CACHE_SECONDS, None)
        self._tasks = [
            asyncio.create_task(self._sync_watches(), name="hub-watches"),
            asyncio.create_task(self._refresh_leases(), name="hub-leases"),
        ]

    def lease_id(self, prefix: str = "") -> str:
        """A stream lease id unique in the cluster: this process's id and a number (no random bytes per connect)."""
        return f"{prefix}{self.process_id}:{next(self._lease_numbers)}"

    async def feed_status(self) -> dict[str, Any] | None:
        """The feed leader's status (has its provider history? which symbols are not served?), read at
        most once a second per process: every snapshot wants it."""
        read_at, status = self._feed_status
        if time.monotonic() - read_at >= FEED_STATUS_CACHE_SECONDS:
            status = await self.state.feed_status()
            self._feed_status = (time.monotonic(), status)
        return status

    def feed_status_forget(self) -> None:
        self._feed_status = (-FEED_STATUS_CACHE_SECONDS, None)

    # -- rooms ---------------------------------------------------------------------------
    async def join(self, connection: Connection) -> None:
        async with self._room_locks[connection.schema]:
            room = self.rooms.get(connection.schema)
            if room is None:
                room = Room(self, connection.schema)
                await room.open()
                self.rooms[connection.schema] = room
            room.connections.add(connection)

    async def leave(self, connection: Connection, symbols: Iterable[str]) -> None:
        """Take the connection out of its room (the room closes with its last connection)."""
        self.unfollow(connection, symbols)
        async with self._room_locks[connection.schema]:
            room = self.rooms.get(connection.schema)
            if room is None or connection not in room.connections:
                return
            room.connections.discard(connection)
            for followers in room.by_symbol.values():
                followers.discard(connection)
            if not room.connections:
                del self.rooms[connection.schema]
                await room.close()

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine as a task that the hub keeps (and cancels on close); its errors are logged."""
        task = asyncio.create_task(coroutine)
        self._spawned.add(task)
        task.add_done_callback(self._spawned_done)

    def _spawned_done(self, task: asyncio.Task[None]) -> None:
        self._spawned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("hub task failed", exc_info=task.exception())

    async def close(self) -> None:
        """Stop the hub's tasks and leave every group (process shutdown, tests)."""
        # The hub's close (process shutdown, tests) does not wait beyond a few seconds.
        stuck = await cancel_until_done([*self._tasks, *self._spawned], CLOSE_WAIT_SECONDS)
        for task in stuck:
            logger.warning("hub task still running %s s after its cancellation: %s", CLOSE_WAIT_SECONDS, where(task))
        for room in list(self.rooms.values()):
            await room.close()
        self.rooms.clear()

    def leases(self) -> list[tuple[LeaseKind, str, str]]:
        return [m.lease for room in self.rooms.values() for m in room.connections if m.lease is not None]

    # -- symbols ------------------------------------------------------------------------------
    def follow(self, connection: Connection, symbols: Iterable[str]) -> None:
        room = self.rooms.get(connection.schema)
        if room is None or connection not in room.connections:
            raise LookupError(f"a connection of {connection.schema} followed symbols outside its room")
        for symbol in symbols:
            room.by_symbol[symbol].add(connection)
            self._count(Watch(connection.schema, connection.delay_minutes, symbol), +1)

    def unfollow(self, connection: Connection, symbols: Iterable[str], delay_minutes: int | None = None) -> None:
        room = self.rooms.get(connection.schema)
        delay = connection.delay_minutes if delay_minutes is None else delay_minutes
        for symbol in symbols:
            if room is not None:
                followers = room.by_symbol.get(symbol)
                if followers is not None:
                    followers.discard(connection)
                    if not followers:
                        del room.by_symbol[symbol]
            self._count(Watch(connection.schema, delay, symbol), -1)

    def _count(self, watch: Watch, step: int) -> None:
        before = self._watch_counts[watch]
        after = before + step
        if after <= 0:
            self._watch_counts.pop(watch, None)
            if before > 0:
                self._removed.add(watch)
                self._added.discard(watch)
        else:
            self._watch_counts[watch] = after
            if before == 0:
                self._added.add(watch)
                self._removed.discard(watch)
        self._dirty.set()

    async def _sync_watches(self) -> None:
        """Publish watch changes to the registry (batched); when quiet, keep the registry's copy alive.

        A heartbeat only extends the expiry: rewriting the set would bump the version and make the
        feed rebuild its index for nothing. The full set is written again only when the registry
        lost it (expired, Redis restarted) or an update failed.
        """
        full = True
        while True:
            try:
                async with asyncio.timeout(WATCH_HEARTBEAT_SECONDS):
                    await self._dirty.wait()
            except TimeoutError:
                try:
                    if not self._watch_counts or await self.state.watches_touch(self.process_id):
                        continue
                except Exception:
                    logger.exception("could not extend the watch registry's expiry")
                full = True
            self._dirty.clear()
            added, removed = (set(self._watch_counts), set()) if full else (self._added, self._removed)
            self._added, self._removed = set(), set()
            try:
                await self.state.watches_update(self.process_id, added, removed, full=full)
                full = False
            except Exception:
                logger.exception("could not update the watch registry; retrying with the full set")
                full = True
            await asyncio.sleep(WATCH_SYNC_SECONDS)

    async def _refresh_leases(self) -> None:
        while True:
            await asyncio.sleep(settings.STREAM_LEASE_SECONDS / 3)
            try:
                await self.leases_refresh()
            except Exception:
                logger.exception("could not refresh stream leases")

    async def leases_refresh(self) -> None:
        """Extend (or re-create, after a Redis restart) the lease of every connection in a room.

        A connection that leaves while the refresh is in flight may have its lease written back
        after its own release: such leases are released again at once.
        """
        leases = self.leases()
        await self.state.lease_refresh(leases)
        live = set(self.leases())
        for lease in leases:
            if lease not in live:
                await self.state.lease_release(*lease)


_hubs: dict[asyncio.AbstractEventLoop, StreamHub] = {}


async def stream_hub_close() -> None:
    """Close the running loop's hub, if it has one."""
    hub = _hubs.pop(asyncio.get_running_loop(), None)
    if hub is not None:
        await hub.close()


def stream_hub_running() -> StreamHub | None:
    """The running event loop's hub if it has one (never creates it)."""
    return _hubs.get(asyncio.get_running_loop())


def stream_hub() -> StreamHub:
    """The hub of the running event loop, created on first use (with the in-process feed in dev mode)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("CHANNEL_LAYERS is not configured")
        hub = _hubs[loop] = StreamHub(layer, stream_state())
        if settings.STREAM_FEED_IN_PROCESS:
            from .feed import Feed
            from .observers import feed_observers
            from .providers import provider_create

            feed = Feed(provider_create(), hub.state, layer, observers=feed_observers())
            hub._tasks.append(asyncio.create_task(feed.run(), name="in-process-feed"))
    return hub
