"""The stock-market websocket: the connect step of SPEC, then subscribe / unsubscribe / ping.

A connection takes three things: a stream lease (Redis), a place in its organisation's room (this
process's hub) and a sender task. `release()` gives them all back, once, and `__call__` runs it
whatever ends the connection: a polite close, a client gone in the middle of the connect, or an
exception escaping a handler (after which Channels never delivers the disconnect).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

import orjson
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from billing.limits import PlanLimits
from core.inflight import InFlight
from symbols.selectors import Rejection, symbols_validate

from .access import (
    Grant,
    OrganisationRef,
    StreamAccess,
    plan_limits,
    stream_access,
    stream_access_cached,
    watchlist_stream_symbols,
)
from .feed_changes import MARKET_CHANGED, UNSERVED_CHANGED, unserved_items
from .frames import FrameGuard
from .hub import StreamHub, stream_hub
from .metrics import STREAM_COUNTS
from .params import StreamParams
from .protocol import (
    CONNECTION_FAILED,
    MAX_FRAME_BYTES,
    NOT_AUTHENTICATED,
    ORGANISATION_DELETED,
    RATE_LIMITED,
    SERVER_RESTART,
    SLOW_CONSUMER,
    TOO_MANY_BAD_FRAMES,
    CloseCode,
    ProtocolError,
    Refusal,
    action_parse,
)
from .providers import data_simulated
from .quotes import WRITE_FRAME, quotes_frame
from .sender import ConflatingSender
from .state import LeaseKind
from .subscription import Subscription

logger = logging.getLogger(__name__)

SESSION_CHECKS = InFlight()

CLOSE_TIMEOUT_SECONDS = 5.0
# Quotes and control messages reach connections through the process's StreamHub (one layer
# subscription per organisation per process), so a connection needs no channel of its own.
NO_PER_CONNECTION_CHANNEL = "hub-delivery-only"


class StockMarketConsumer(AsyncJsonWebsocketConsumer):
    channel_layer_alias = NO_PER_CONNECTION_CHANNEL

    schema: str
    user_id: int | None = None  # the signed-in member (None for a widget viewer)
    delay_minutes: int
    lease: tuple[LeaseKind, str, str] | None = None
    closing = False  # a close is under way: nothing else is sent, frames are ignored
    close_sent = False
    released = False  # lease, room place and sender given back
    let_in = False  # the connect step let it in: it holds a stream place (until released)
    # Set by connect() once the connection is accepted; nothing else runs before that.
    hub: StreamHub
    sender: ConflatingSender
    subscription: Subscription
    watchlist_id: int | None = None
    max_per_second = 0  # the throttle a connection starts with (a widget's own setting); 0: none
    # What the client was last told of the market and of its unserved symbols (snapshot, then messages):
    # the feed's catch-up for an organisation that just started watching may repeat it; said once.
    told_market_open = True
    told_unserved: list[dict[str, str]] = []  # replaced, never changed in place

    # -- the connection's life -------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' AsyncConsumer.__call__ without a channel of its own (NO_PER_CONNECTION_CHANNEL):
        its `await_many_dispatch` would run each `receive` in a task of its own, behind an
        `asyncio.wait`, which is a task, a future and their callbacks per frame and per connection
        for a single source of messages. One loop reads the client's messages in turn instead."""
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
                # A burst of frames already received would otherwise be handled without a pause, and
                # the replies the sender task holds for them would never leave before a close.
                await asyncio.sleep(0)
        except StopConsumer:
            pass
        finally:
            # Shielded: a cancellation of this task must not cut the release short.
            await asyncio.shield(asyncio.ensure_future(self.release()))

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' own dispatch first closes stale database connections, a thread hop per frame;
        # every query here runs in database_sync_to_async, which does that around each call.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def release(self) -> None:
        """Give back the sender task, the room place and the lease: once, whatever raised before."""
        if self.released:
            return
        self.released = self.closing = True
        if "sender" in self.__dict__:
            await self.sender.stop()
        if "hub" in self.__dict__:
            if "subscription" in self.__dict__:  # it reached start_streaming, so it may be in the room
                try:
                    await self.hub.leave(self, self.subscription.list())
                except Exception:
                    logger.exception("could not leave the room of %s", self.schema)
            lease, self.lease = self.lease, None
            if lease is not None:
                try:
                    await self.hub.state.lease_release(*lease)
                except Exception:
                    logger.exception("could not release a stream lease of %s; it lapses by itself", self.schema)

    # -- connect ----------------------------------------------------------------------------------
    async def connect(self) -> None:
        organisation: OrganisationRef = self.scope["organisation"]
        self.schema = organisation.schema_name
        self.guard = FrameGuard()
        try:
            grant = await self.connect_check(organisation)
        except DatabaseError:
            grant = self.service_unreachable("database")
        self.handshake_headers_drop()
        if isinstance(grant, Refusal):
            await self.refuse(grant)
            return
        self.hub = stream_hub()
        await self.accept()
        try:
            await self.start_streaming(grant)
        except RedisError:
            await self.close_with(self.service_unreachable("streaming state"), refused=not self.let_in)

    def handshake_headers_drop(self) -> None:
        """The handshake's headers (Host, Origin, Cookie…) were read by the connect step and are not read
        again, but the server's scope and every copy of it hold their one list for the connection's life
        (~1 KB): emptied in place."""
        headers = self.scope.get("headers")
        if isinstance(headers, list):
            headers.clear()

    def service_unreachable(self, service: str) -> Refusal:
        """The database or Redis is away (restarting): SPEC's 1012, so the client reconnects with
        backoff (it got an HTTP 500 to its handshake, or a 1011 once accepted, before)."""
        logger.warning("%s unreachable at a connect of %s: closing 1012", service, self.schema, exc_info=True)
        return SERVER_RESTART

    async def connect_check(self, organisation: OrganisationRef) -> Grant | Refusal:
        """The connect step of SPEC for a signed-in member: session, membership, standing, symbols."""
        params: StreamParams = self.scope["stream_params"]
        self.watchlist_id = params.watchlist_id
        session_key = self.scope.get("session_key")

        def cached() -> tuple[bool, StreamAccess | Refusal]:
            access = stream_access_cached(organisation=organisation, session_key=session_key, params=params)
            return (False, NOT_AUTHENTICATED) if access is None else (True, access)

        def check() -> Awaitable[StreamAccess | Refusal]:
            return database_sync_to_async(stream_access, thread_sensitive=False)(
                organisation=organisation, session_key=session_key, params=params
            )

        if not session_key or params.watchlist_id is not None:  # nothing a check of another connect could answer
            access = await check()
        else:  # a storm's connects of one member: one database check, the others read what it left
            access = await SESSION_CHECKS.get((session_key, organisation.pk), cached, check)
        if not isinstance(access, Refusal):
            self.user_id = access.user_id
        return access

    def lease_terms(self, limits: PlanLimits) -> tuple[LeaseKind, int]:
        """Which places this connection takes, and how many its organisation has."""
        return LeaseKind.STREAM, limits.max_streams

    def lease_prefix(self) -> str:
        return ""

    def lease_refusal(self, limits: PlanLimits) -> Refusal:
        return stream_limit_refusal(limits)

    async def start_streaming(self, grant: Grant) -> None:
        """Join the room, follow the symbols, then take a stream place and read the snapshot's quotes in
        one Redis call: read after following, so that no quote falls between the snapshot and the stream."""
        self.delay_minutes = grant.limits.delay_minutes
        self.subscription = Subscription(grant.symbols, grant.limits)
        write_frame = self.scope.get("extensions", {}).get(WRITE_FRAME)
        self.sender = ConflatingSender(
            self.send_text,
            self.close_slow,
            slow_after=settings.STREAM_SLOW_CONSUMER_SECONDS,
            clock=self.hub.clock,
            on_failed=self.abort,
            write_now=write_frame,
        )
        self.sender.throttle(self.max_per_second)
        await self.hub.join(self)
        if self.released:  # the client left, or a control message closed it, while joining
            return
        symbols = self.subscription.list()
        self.hub.follow(self, symbols)
        kind, limit = self.lease_terms(grant.limits)
        # Recorded before the call: if the call fails after Redis took the place, release() gives it back.
        lease = self.lease = (kind, self.schema, self.hub.lease_id(self.lease_prefix()))
        cached = await self.hub.state.lease_acquire_reading(*lease, limit, self.delay_minutes, symbols)
        if cached is None:
            self.lease = None
            await self.close_with(self.lease_refusal(grant.limits), refused=True)
            return
        if self.released:  # closed meanwhile: its release may have come before the place was taken
            await self.hub.state.lease_release(*lease)
            return
        self.let_in = True
        STREAM_COUNTS.accepted += 1
        await self.send_text(await self.snapshot(symbols, cached))
        if self.released:
            return
        if grant.rejected:
            self.sender.message(self.encode(subscribed([], grant.rejected)))
        self.sender.start()

    async def snapshot(self, symbols: list[str], cached: dict[str, bytes]) -> str:
        feed = await self.hub.feed_status() or {}
        limits = self.subscription.limits
        extra: dict[str, Any] = {"delayed": not limits.realtime}
        if not limits.realtime:
            extra["delay_minutes"] = self.delay_minutes
            missing = [s for s in symbols if s not in cached]
            if missing and not feed.get("history"):  # with history, quotes of `delay` ago come within a second
                extra["pending"] = await self.pending_delayed(missing)
        unserved = feed.get("unserved") or {}
        self.told_unserved = unserved_items(symbols, unserved)
        if self.told_unserved:  # the data source does not serve these (a vendor's cap, say)
            extra["unserved"] = self.told_unserved
        market = feed.get("market")
        self.told_market_open = not market or bool(market.get("open"))
        if not self.told_market_open:  # trading hours: the exchange is closed, the last quotes stand
            extra["market"] = market
        extra["limits"] = limits.as_dict(len(self.subscription))
        extra["simulated"] = data_simulated(feed.get("provider"))
        return quotes_frame("snapshot", [cached[s] for s in symbols if s in cached], **extra, **self.snapshot_extra())

    def snapshot_extra(self) -> dict[str, Any]:
        """More fields of the snapshot, for kinds of connection that need them."""
        return {}

    async def pending_delayed(self, symbols: list[str]) -> list[dict[str, Any]]:
        """When delayed quotes of these symbols will start (their history began when first watched)."""
        from .feed import delay_ms

        started = await self.hub.state.delay_history_started(self.delay_minutes)
        lag = delay_ms(self.delay_minutes)
        now = time.time_ns() // 1_000_000
        return [{"symbol": s, "available_at": started.get(s, now) + lag} for s in symbols]

    async def refuse(self, refusal: Refusal) -> None:
        self.closing = self.close_sent = True
        STREAM_COUNTS.refusals[int(refusal.close_code)] += 1
        await self.accept()
        await self.base_send({"type": "websocket.send", "text": self.encode(refusal.message_dict())})
        await self.base_send({"type": "websocket.close", "code": int(refusal.close_code)})

    # -- hub callbacks -----------------------------------------------------------------------------
    def offer(self, symbol: str, encoded: bytes) -> None:
        self.sender.offer(symbol, encoded)

    async def control(self, event: dict[str, Any]) -> None:
        # One control message at a time per connection, in the order they came (asyncio.Lock is FIFO):
        # two quick watchlist edits must not apply out of order.
        if "control_lock" not in self.__dict__:
            self.control_lock = asyncio.Lock()
        async with self.control_lock:
            await self.control_apply(event)

    async def control_apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "plan.changed":
            await self.plan_changed(event)
        elif kind == "member.removed" and event.get("user_id") == self.user_id:
            name = self.scope["organisation"].name
            await self.close_with(Refusal(CloseCode.FORBIDDEN, "forbidden", f"You are no longer a member of {name}."))
        elif kind == "organisation.deleted":
            await self.close_with(ORGANISATION_DELETED)
        elif kind == "watchlist.changed":
            await self.watchlist_changed(event)
        elif kind == "alert.fired" and isinstance(event.get("alert"), dict):
            self.reply({"type": "alert", "alert": event["alert"]})
        elif kind == MARKET_CHANGED and isinstance(event.get("market"), dict):
            if bool(event["market"].get("open")) != self.told_market_open:
                self.told_market_open = not self.told_market_open
                self.reply({"type": "market", "market": event["market"]})
        elif kind == UNSERVED_CHANGED and any(s in self.subscription for s in event.get("symbols", ())):
            self.reply_unserved(event.get("unserved") or {})

    def reply_unserved(self, unserved: dict[str, str]) -> None:
        """The unserved symbols among this connection's, all of them (an empty list: all are served again)."""
        items = unserved_items(self.subscription.list(), unserved)
        if items != self.told_unserved:
            self.told_unserved = items
            self.reply({"type": "unserved", "unserved": items})

    async def abort(self) -> None:
        """The connection failed while handling a message: give its place back, then close it."""
        await self.close_with(CONNECTION_FAILED)

    async def plan_changed(self, event: dict[str, Any]) -> None:
        """Apply the organisation's new plan without a reconnect (SPEC: within 2 seconds)."""
        limits = event.get("limits") or await database_sync_to_async(plan_limits, thread_sensitive=False)(
            organisation_id=self.scope["organisation"].pk
        )
        if self.released:
            return
        if isinstance(limits, Refusal):
            await self.close_with(limits)
            return
        if limits.delay_minutes != self.delay_minutes:
            symbols = self.subscription.list()
            self.hub.unfollow(self, symbols)
            self.sender.drop(set(symbols))
            self.delay_minutes = limits.delay_minutes
            self.hub.follow(self, symbols)
        change = self.subscription.limit(limits)
        self.stop_following(change.removed)
        self.reply({"type": "limits", **limits.as_dict(len(self.subscription)), "delayed": not limits.realtime,
                    "delay_minutes": limits.delay_minutes})  # fmt: skip
        if change.removed:
            stopped = ", ".join(change.removed)
            why = f"Your plan now allows {limits.max_symbols} symbols per stream, so {stopped} stopped streaming."
            self.reply(unsubscribed(change.removed, "plan_limit", why))

    async def watchlist_changed(self, event: dict[str, Any]) -> None:
        """Follow the edited watchlist (SPEC: within 2 seconds): added symbols start, removed ones stop."""
        watchlist_id = self.watchlist_id
        if watchlist_id is None or event.get("watchlist_id") != watchlist_id:  # not the one this stream shows
            return
        read = await database_sync_to_async(watchlist_stream_symbols, thread_sensitive=False)(
            schema_name=self.schema, watchlist_id=watchlist_id
        )
        if self.released:
            return
        accepted, rejected = read if read is not None else ([], [])
        why = "was deleted" if read is None else "no longer lists them"
        await self.symbols_replace(accepted, rejected, reason="watchlist", why=f"The watchlist {why}.")

    async def symbols_replace(self, accepted: list[str], rejected: list[Rejection], *, reason: str, why: str) -> None:
        """Follow exactly these symbols now: say which stopped (and why) and which started."""
        change = self.subscription.replace(accepted)
        self.stop_following(change.removed)
        if change.removed:
            self.reply(unsubscribed(change.removed, reason, why))
        if change.added or rejected or change.rejected:
            await self.start_following(change.added, rejected + change.rejected)

    def stop_following(self, symbols: list[str]) -> None:
        self.hub.unfollow(self, symbols)
        self.sender.drop(set(symbols))

    async def start_following(self, symbols: list[str], rejected: list[Rejection]) -> None:
        """Watch newly followed symbols, say so, then send their last known quotes."""
        self.hub.follow(self, symbols)
        self.reply(subscribed(symbols, rejected))
        cached = await self.hub.state.last_quotes(self.delay_minutes, symbols)
        unserved = (await self.hub.feed_status() or {}).get("unserved") or {}
        if self.released:
            return
        if any(s in unserved for s in symbols):  # already not served: the snapshot would have said so
            self.reply_unserved(unserved)
        for symbol, encoded in cached.items():
            if symbol in self.subscription:
                self.offer(symbol, encoded)

    # -- client messages -------------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if self.closing:  # frames still in flight after our close: nobody answers them
            return None
        if not self.guard.action():
            return await self.bad_frame(RATE_LIMITED)
        try:
            if text_data is None or len(text_data) > MAX_FRAME_BYTES:
                raise ProtocolError("Send JSON text frames of at most 64 KB.")
            try:
                content = orjson.loads(text_data)
            except orjson.JSONDecodeError as exc:
                raise ProtocolError("That frame is not valid JSON.") from exc
            action = action_parse(content)
        except ProtocolError as exc:
            return await self.bad_frame(Refusal(CloseCode.BAD_REQUEST, "bad_request", str(exc)))
        if action.action == "ping":
            return self.reply({"type": "pong"})
        if action.action == "throttle":
            return self.sender.throttle(action.max_per_second or 0)
        if action.action == "subscribe":
            return await self.subscribe(action.symbols)
        return self.unsubscribe(action.symbols)

    async def subscribe(self, raw: list[Any]) -> None:
        accepted, rejected = await database_sync_to_async(symbols_validate, thread_sensitive=False)(raw)
        if self.released:
            return
        change = self.subscription.add(accepted)
        await self.start_following(change.added, rejected + change.rejected)

    def unsubscribe(self, raw: list[Any]) -> None:
        change = self.subscription.remove(raw)
        self.stop_following(change.removed)
        self.reply(unsubscribed(change.removed, "client"))

    async def bad_frame(self, refusal: Refusal) -> None:
        if self.guard.bad_frame():
            await self.close_with(TOO_MANY_BAD_FRAMES)
        else:
            self.reply(refusal.message_dict())

    # -- sending and closing -------------------------------------------------------------------------
    def reply(self, message: dict[str, Any]) -> None:
        self.sender.message(self.encode(message))

    @staticmethod
    def encode(message: dict[str, Any]) -> str:
        return orjson.dumps(message).decode()

    async def send_text(self, text: str) -> None:
        # Straight to the server's ASGI send: this runs for every frame, the consumer's wrappers add nothing.
        if not self.closing:
            await self.base_send({"type": "websocket.send", "text": text})
            STREAM_COUNTS.frames_out += 1

    async def close_slow(self) -> None:
        """The client stopped reading: free its place at once, then close 4408 when the socket lets us."""
        # No timeout: the close frame queues behind the unread data; uvicorn's ping timeout ends
        # the connection if the client never reads again.
        await self.close_with(SLOW_CONSUMER, wait_seconds=None)

    async def close_with(
        self, refusal: Refusal, *, wait_seconds: float | None = CLOSE_TIMEOUT_SECONDS, refused: bool = False
    ) -> None:
        """Give the connection's place back at once, then tell the client why and close (once).
        `refused`: the connect step refused it (counted with the refusals, not with the closes)."""
        await self.release()
        if self.close_sent:
            return
        self.close_sent = True
        (STREAM_COUNTS.refusals if refused else STREAM_COUNTS.closes)[int(refusal.close_code)] += 1
        try:
            async with asyncio.timeout(wait_seconds):
                await self.base_send({"type": "websocket.send", "text": self.encode(refusal.message_dict())})
                await self.base_send({"type": "websocket.close", "code": int(refusal.close_code)})
        except TimeoutError:
            # The client is not reading: the close frame waits in its full buffer; the server's
            # ping timeout ends the connection.
            logger.info("close %s could not be sent at once", int(refusal.close_code))
        except OSError:  # the server's ClientDisconnected: the client is gone, the disconnect follows
            pass

    async def disconnect(self, code: int) -> None:
        await self.release()


def subscribed(symbols: list[str], rejected: list[Rejection]) -> dict[str, Any]:
    return {"type": "subscribed", "symbols": symbols, "rejected": [r.as_dict() for r in rejected]}


def unsubscribed(symbols: list[str], reason: str, message: str | None = None) -> dict[str, Any]:
    return {"type": "unsubscribed", "symbols": symbols, "reason": reason, **({"message": message} if message else {})}


def stream_limit_refusal(limits: PlanLimits) -> Refusal:
    return Refusal(
        CloseCode.LIMIT,
        "stream_limit",
        f"Your organisation already has {limits.max_streams} open streams, the most its plan allows. "
        "Close another dashboard, or upgrade your plan.",
        {"limits": {"max_streams": limits.max_streams}},
    )
