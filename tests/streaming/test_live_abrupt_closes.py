"""Abrupt deaths against a real server: a client may vanish at any step of the connect or the stream,
and its stream place must come back at once (a leaked place makes a Free organisation's dashboards
4429 until the process restarts)."""

import asyncio
import base64
import contextlib
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable

import orjson
import pytest
from django.conf import settings
from redis import asyncio as aioredis
from websockets.frames import Frame, Opcode

from tests.live import FeedProcess, LiveServer, record_figure, stream_key
from tests.streaming import live_support
from tests.streaming.conftest import Committed, Tenant
from tests.streaming.live_support import recv_json, ws_connect

pytestmark = pytest.mark.live

db, feed, web = live_support.db, live_support.feed, live_support.web

REPETITIONS = 4
# A released place is gone at once; the server refreshes the lease of every connection it still
# holds (every second here), so a leaked one never lapses. One second tells them apart.
RELEASE_WITHIN_SECONDS = 1.0


class RawClient:
    """A websocket client on a bare TCP socket, so a test can vanish at any byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server: LiveServer, tenant: Tenant, query: str = "symbols=AAPL,MSFT") -> "RawClient":
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /ws/stock-market/?{query} HTTP/1.1\r\nHost: {tenant.host}:{server.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nCookie: sessionid={tenant.session}\r\n\r\n".encode()
        )
        await writer.drain()
        return cls(reader, writer)

    async def handshake(self) -> None:
        response = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        assert response.startswith(b"HTTP/1.1 101"), response

    async def frame(self) -> dict[str, object]:
        """The next server text frame (servers do not mask)."""
        head = await asyncio.wait_for(self.reader.readexactly(2), 10)
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return dict(orjson.loads(await self.reader.readexactly(length)))

    def send(self, payload: bytes, opcode: Opcode = Opcode.TEXT) -> None:
        self.writer.write(Frame(opcode, payload).serialize(mask=True, extensions=[]))

    def reset(self) -> None:
        """Vanish: RST, no close frame (a browser tab killed, a phone losing signal)."""
        sock = self.writer.transport.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


async def vanish_after_request(server: LiveServer, tenant: Tenant) -> None:
    (await RawClient.open(server, tenant)).reset()


async def vanish_during_the_connect_step(server: LiveServer, tenant: Tenant) -> None:
    client = await RawClient.open(server, tenant)
    await asyncio.sleep(0.005)  # inside the server's session / membership / plan read
    client.reset()


async def vanish_after_the_101(server: LiveServer, tenant: Tenant) -> None:
    client = await RawClient.open(server, tenant)
    await client.handshake()
    client.reset()


async def vanish_after_the_snapshot(server: LiveServer, tenant: Tenant) -> None:
    client = await RawClient.open(server, tenant)
    await client.handshake()
    assert (await client.frame())["type"] == "snapshot"
    client.reset()


async def vanish_while_streaming(server: LiveServer, tenant: Tenant) -> None:
    client = await RawClient.open(server, tenant)
    await client.handshake()
    assert (await client.frame())["type"] == "snapshot"
    while (await client.frame())["type"] != "quotes":
        pass
    client.reset()


async def burst_of_bad_frames(server: LiveServer, tenant: Tenant) -> None:
    """Twelve bad frames at once: the server closes 4400 after the sixth, the rest arrive after its close."""
    client = await RawClient.open(server, tenant)
    await client.handshake()
    for _ in range(12):
        client.send(b"garbage")
    await client.writer.drain()
    await asyncio.sleep(0.2)
    client.reset()


async def oversized_frame_after_the_handshake(server: LiveServer, tenant: Tenant) -> None:
    client = await RawClient.open(server, tenant)
    await client.handshake()
    client.send(b"x" * 70_000)  # past the server's 64 KB frame limit
    await client.writer.drain()
    await asyncio.sleep(0.2)
    client.reset()


async def subscribe_then_vanish(server: LiveServer, tenant: Tenant) -> None:
    client = await RawClient.open(server, tenant)
    await client.handshake()
    client.send(orjson.dumps({"action": "subscribe", "symbols": ["NVDA", "AMZN"]}))
    await client.writer.drain()
    client.reset()


async def polite_close(server: LiveServer, tenant: Tenant) -> None:
    async with ws_connect(server, tenant.host, tenant.session, "symbols=AAPL") as ws:
        assert (await recv_json(ws))["type"] == "snapshot"


STEPS: list[Callable[[LiveServer, Tenant], Awaitable[None]]] = [
    vanish_after_request,
    vanish_during_the_connect_step,
    vanish_after_the_101,
    vanish_after_the_snapshot,
    vanish_while_streaming,
    burst_of_bad_frames,
    oversized_frame_after_the_handshake,
    subscribe_then_vanish,
    polite_close,
]


async def places_taken(redis: "aioredis.Redis[bytes]", tenant: Tenant) -> int:
    key = stream_key(f"lease:streams:{tenant.schema}")
    await redis.zremrangebyscore(key, "-inf", time.time_ns() // 1_000_000)
    return int(await redis.zcard(key))


async def settled_count(redis: "aioredis.Redis[bytes]", tenant: Tenant, expected: int) -> int:
    """The places taken once the server has had RELEASE_WITHIN_SECONDS to reach `expected`."""
    deadline = time.monotonic() + RELEASE_WITHIN_SECONDS
    count = await places_taken(redis, tenant)
    for _ in range(int(RELEASE_WITHIN_SECONDS / 0.02)):
        if count == expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
        count = await places_taken(redis, tenant)
    return count


async def test_abrupt_closes_at_every_step_leave_no_stream_place_taken(
    committed: Committed, feed: FeedProcess, web: LiveServer
) -> None:
    # Room for every leak, so that a leak early on cannot hide later ones behind 4429 refusals.
    tenant = await committed.tenant(await committed.plan(max_streams=100))
    leaked: dict[str, int] = {}
    async with aioredis.from_url(settings.REDIS_URL) as redis:
        taken = 0
        for _ in range(REPETITIONS):
            for step in STEPS:
                await step(web, tenant)
                now_taken = await settled_count(redis, tenant, expected=0)
                if now_taken > taken:
                    leaked[step.__name__] = leaked.get(step.__name__, 0) + now_taken - taken
                taken = now_taken
    cycles = REPETITIONS * len(STEPS)
    record_figure("abrupt closes", f"{sum(leaked.values())} places left taken after {cycles} cycles: {leaked}")
    assert leaked == {}, f"places not given back at once, by step: {leaked}"
    assert taken == 0


async def test_a_two_stream_plan_streams_twice_after_a_storm_of_vanishing_clients(
    committed: Committed, web: LiveServer
) -> None:
    tenant = await committed.tenant(await committed.plan(max_streams=2))
    for _ in range(10):
        for step in (vanish_after_request, vanish_during_the_connect_step, vanish_after_the_101):
            await step(web, tenant)
    await asyncio.sleep(RELEASE_WITHIN_SECONDS)
    async with (
        ws_connect(web, tenant.host, tenant.session, "symbols=AAPL") as one,
        ws_connect(web, tenant.host, tenant.session, "symbols=AAPL") as two,
    ):
        assert [(await recv_json(one))["type"], (await recv_json(two))["type"]] == ["snapshot", "snapshot"]
