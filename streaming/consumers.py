"""The stock-market websocket: the connect step of SPEC, then subscribe / unsubscribe / ping."""

import asyncio
import logging
import time
import uuid
from collections import deque
from typing import Any

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from .hub import StreamHub, stream_hub
from .protocol import (
    MAX_FRAME_BYTES,
    ORGANISATION_DELETED,
    SLOW_CONSUMER,
    TOO_MANY_BAD_FRAMES,
    CloseCode,
    ProtocolError,
    Refusal,
    action_parse,
)
from .quotes import quotes_frame
from .selectors import OrganisationRef, PlanLimits, StreamAccess, plan_limits, stream_access
from .sender import ConflatingSender
from .state import LeaseKind
from .symbols import Rejection, symbols_validate

logger = logging.getLogger(__name__)

BAD_FRAMES_ALLOWED = 5
CLOSE_TIMEOUT_SECONDS = 5.0
BAD_FRAMES_WINDOW_SECONDS = 10.0
# Quotes and control messages reach connections through the process's StreamHub (one layer
# subscription per organisation per process), so a connection needs no channel of its own.
NO_PER_CONNECTION_CHANNEL = "hub-delivery-only"


class StockMarketConsumer(AsyncJsonWebsocketConsumer):
    channel_layer_alias = NO_PER_CONNECTION_CHANNEL

    schema: str
    user_id: int
    delay_minutes: int
    lease: tuple[LeaseKind, str, str] | None = None
    left = False
    # Set by connect() once the connection is accepted; nothing else runs before that.
    hub: StreamHub
    sender: ConflatingSender
    limits: PlanLimits

    # -- connect ----------------------------------------------------------------------------------
    async def connect(self) -> None:
        organisation: OrganisationRef = self.scope["organisation"]
        self.schema = organisation.schema_name
        self.symbols: list[str] = []
        self.bad_frames: deque[float] = deque()
        params = self.scope_params()
        access = await database_sync_to_async(stream_access, thread_sensitive=False)(
            organisation=organisation,
            session_key=self.scope.get("session_key"),
            symbols_param=params.get("symbols", ""),
            watchlist_param=params.get("watchlist", ""),
        )
        if isinstance(access, Refusal):
            await self.refuse(access)
            return
        hub = stream_hub()
        lease = (LeaseKind.STREAM, self.schema, f"{hub.process_id}:{uuid.uuid4().hex}")
        if not await hub.state.lease_acquire(*lease, limit=access.limits.max_streams):
            await self.refuse(stream_limit_refusal(access.limits))
            return
        self.lease, self.hub = lease, hub
        await self.accept()
        await self.start_streaming(access)

    def scope_params(self) -> dict[str, str]:
        from .middleware import query_params

        return query_params(self.scope)

    async def start_streaming(self, access: StreamAccess) -> None:
        self.user_id = access.user_id
        self.limits = access.limits
        self.delay_minutes = access.limits.delay_minutes
        self.symbols = access.symbols
        self.sender = ConflatingSender(
            self.send_text, self.close_slow, slow_after=settings.STREAM_SLOW_CONSUMER_SECONDS, clock=self.hub.clock
        )
        await self.hub.join(self)
        self.hub.watch(self, self.symbols)
        snapshot = await self.snapshot(self.symbols)
        await self.send_text(snapshot)
        if access.rejected:
            self.sender.message(self.encode(subscribed([], access.rejected)))
        self.sender.start()

    async def snapshot(self, symbols: list[str]) -> str:
        cached = await self.hub.state.last_quotes(self.delay_minutes, symbols)
        extra: dict[str, Any] = {"delayed": not self.limits.realtime}
        if not self.limits.realtime:
            extra["delay_minutes"] = self.delay_minutes
            missing = [s for s in symbols if s not in cached]
            if missing:
                extra["pending"] = await self.pending_delayed(missing)
        extra["limits"] = self.limits.as_dict(len(self.symbols))
        return quotes_frame("snapshot", [cached[s] for s in symbols if s in cached], **extra)

    async def pending_delayed(self, symbols: list[str]) -> list[dict[str, Any]]:
        """When delayed quotes of these symbols will start (their history began when first watched)."""
        from .feed import delay_ms

        started = await self.hub.state.delay_history_started(self.delay_minutes)
        now_ms = time.time_ns() // 1_000_000
        lag = delay_ms(self.delay_minutes)
        return [{"symbol": s, "available_at": started.get(s, now_ms) + lag} for s in symbols]

    async def refuse(self, refusal: Refusal) -> None:
        await self.accept()
        await self.send_json(refusal.message_dict())
        await self.close(code=int(refusal.close_code))

    # -- hub callbacks -----------------------------------------------------------------------------
    def offer(self, symbol: str, encoded: bytes) -> None:
        self.sender.offer(symbol, encoded)

    async def control(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "plan.changed":
            await self.plan_changed(event)
        elif kind == "member.removed" and event.get("user_id") == self.user_id:
            name = self.scope["organisation"].name
            await self.close_with(Refusal(CloseCode.FORBIDDEN, "forbidden", f"You are no longer a member of {name}."))
        elif kind == "organisation.deleted":
            await self.close_with(ORGANISATION_DELETED)

    async def plan_changed(self, event: dict[str, Any]) -> None:
        """Apply the organisation's new plan without a reconnect (SPEC: within 2 seconds)."""
        limits = event.get("limits") or await database_sync_to_async(plan_limits, thread_sensitive=False)(
            organisation_id=self.scope["organisation"].pk
        )
        if isinstance(limits, Refusal):
            await self.close_with(limits)
            return
        if limits.delay_minutes != self.delay_minutes:
            self.hub.unwatch(self, self.symbols)
            self.sender.drop(set(self.symbols))
            self.delay_minutes = limits.delay_minutes
            self.hub.watch(self, self.symbols)
        self.limits = limits
        dropped = self.symbols[limits.max_symbols :]
        if dropped:
            self.symbols = self.symbols[: limits.max_symbols]
            self.hub.unwatch(self, dropped)
            self.sender.drop(set(dropped))
        self.sender.message(self.encode({"type": "limits", **limits.as_dict(len(self.symbols)),
                                         "delayed": not limits.realtime,
                                         "delay_minutes": limits.delay_minutes}))  # fmt: skip
        if dropped:
            self.sender.message(self.encode({
                "type": "unsubscribed", "symbols": dropped, "reason": "plan_limit",
                "message": f"Your plan now allows {limits.max_symbols} symbols per stream, so "
                           f"{', '.join(dropped)} stopped streaming.",
            }))  # fmt: skip

    # -- client messages -------------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        try:
            if text_data is None or len(text_data) > MAX_FRAME_BYTES:
                raise ProtocolError("Send JSON text frames of at most 64 KB.")
            try:
                content = orjson.loads(text_data)
            except orjson.JSONDecodeError as exc:
                raise ProtocolError("That frame is not valid JSON.") from exc
            action = action_parse(content)
        except ProtocolError as exc:
            return await self.bad_frame(str(exc))
        if action.action == "ping":
            return self.reply({"type": "pong"})
        if action.action == "subscribe":
            return await self.subscribe(action.symbols)
        return self.unsubscribe(action.symbols)

    async def subscribe(self, raw: list[Any]) -> None:
        accepted, rejected = await database_sync_to_async(symbols_validate, thread_sensitive=False)(raw)
        new = [s for s in accepted if s not in self.symbols]
        room = max(self.limits.max_symbols - len(self.symbols), 0)
        rejected += [Rejection(s, "symbol_limit") for s in new[room:]]
        new = new[:room]
        self.symbols += new
        self.hub.watch(self, new)
        self.reply(subscribed(new, rejected))
        for symbol, encoded in (await self.hub.state.last_quotes(self.delay_minutes, new)).items():
            self.offer(symbol, encoded)

    def unsubscribe(self, raw: list[Any]) -> None:
        wanted = {s.strip().upper() for s in raw if isinstance(s, str)}
        removed = [s for s in self.symbols if s in wanted]
        self.symbols = [s for s in self.symbols if s not in wanted]
        self.hub.unwatch(self, removed)
        self.sender.drop(set(removed))
        self.reply({"type": "unsubscribed", "symbols": removed, "reason": "client"})

    async def bad_frame(self, message: str) -> None:
        now = time.monotonic()
        self.bad_frames.append(now)
        while self.bad_frames and now - self.bad_frames[0] > BAD_FRAMES_WINDOW_SECONDS:
            self.bad_frames.popleft()
        if len(self.bad_frames) > BAD_FRAMES_ALLOWED:
            await self.close_with(TOO_MANY_BAD_FRAMES)
        else:
            self.reply({"type": "error", "code": "bad_request", "message": message})

    # -- sending and closing -------------------------------------------------------------------------
    def reply(self, message: dict[str, Any]) -> None:
        self.sender.message(self.encode(message))

    @staticmethod
    def encode(message: dict[str, Any]) -> str:
        return orjson.dumps(message).decode()

    async def send_text(self, text: str) -> None:
        # Straight to the server's ASGI send: this runs for every frame, the consumer's wrappers add nothing.
        await self.base_send({"type": "websocket.send", "text": text})

    async def close_slow(self) -> None:
        """The client stopped reading: free its place at once, then close 4408 when the socket lets us."""
        await self.leave()
        # No timeout here: the close frame queues behind the unread data; uvicorn's ping timeout
        # ends the connection if the client never reads again.
        await self.close(code=int(SLOW_CONSUMER.close_code))

    async def close_with(self, refusal: Refusal) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                await self.send_json(refusal.message_dict())
                await self.close(code=int(refusal.close_code))
        except TimeoutError:
            # The client is not reading: the close frame waits in its full buffer; the server's
            # ping timeout ends the connection.
            logger.info("close %s could not be sent at once", int(refusal.close_code))

    async def disconnect(self, code: int) -> None:
        if "sender" in self.__dict__:
            await self.sender.stop()
        await self.leave()

    async def leave(self) -> None:
        """Stop receiving quotes and give the stream's place back (once)."""
        if "hub" not in self.__dict__ or self.left:
            return
        self.left = True
        await self.hub.leave(self, self.symbols)
        if self.lease is not None:
            await self.hub.state.lease_release(*self.lease)


def subscribed(symbols: list[str], rejected: list[Rejection]) -> dict[str, Any]:
    return {"type": "subscribed", "symbols": symbols, "rejected": [r.as_dict() for r in rejected]}


def stream_limit_refusal(limits: PlanLimits) -> Refusal:
    return Refusal(
        CloseCode.LIMIT,
        "stream_limit",
        f"Your organisation already has {limits.max_streams} open streams, the most its plan allows. "
        "Close another dashboard, or upgrade your plan.",
        {"limits": {"max_streams": limits.max_streams}},
    )
