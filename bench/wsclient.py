"""A minimal websocket client (RFC 6455) on asyncio's Protocol API, built to read fast.

A general-purpose client (the `websockets` library) spends tens of microseconds per frame, so one
load-client process would saturate long before a server does; this one parses frames straight out
of the receive buffer and decodes each text frame once. It never offers compression (every system
under test then streams uncompressed), answers pings, and can be throttled to read at most a given
number of frames per second (a slow reader: unread data stays in the kernel's buffers).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LATENCY_LIMIT_MS = 60_000
OP_CONTINUATION, OP_TEXT, OP_CLOSE, OP_PING = 0x0, 0x1, 0x8, 0x9
NO_STATUS = 1005  # RFC 6455: the close frame carried no code
ABNORMAL = 1006  # the connection ended without a close frame


@dataclass
class Tally:
    """What a group of connections received while measuring: counts and a 1-ms latency histogram."""

    quotes: int = 0
    frames: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * (LATENCY_LIMIT_MS + 1))

    def reset(self) -> None:
        self.quotes = self.frames = 0
        self.histogram[:] = [0] * (LATENCY_LIMIT_MS + 1)

    def merged(self, other: Tally) -> Tally:
        return Tally(self.quotes + other.quotes, self.frames + other.frames,
                     [a + b for a, b in zip(self.histogram, other.histogram, strict=True)])  # fmt: skip

    def percentile(self, p: float) -> int | None:
        if not self.quotes:
            return None
        target, seen = p / 100 * self.quotes, 0
        for ms, count in enumerate(self.histogram):
            seen += count
            if count and seen >= target:
                return ms
        return LATENCY_LIMIT_MS

    def summary(self) -> dict[str, Any]:
        top = next((ms for ms in range(LATENCY_LIMIT_MS, -1, -1) if self.histogram[ms]), None)
        return {"quotes": self.quotes, "frames": self.frames, "p50_ms": self.percentile(50),
                "p99_ms": self.percentile(99), "max_ms": top}  # fmt: skip


@dataclass
class Window:
    """What is being measured: quotes whose source `ts` is in [start_ms, end_ms), whenever they
    arrive (so the count matches the ticks published in that interval exactly), and frames that
    arrive while `open`."""

    start_ms: int = 0
    end_ms: int = 0
    open: bool = False


@dataclass(frozen=True)
class Target:
    """Where one connection goes: loopback port, Host header, path with query, optional cookie and Origin."""

    port: int
    host: str
    path: str
    cookie: str = ""
    receive_buffer: int = 0  # SO_RCVBUF set before connecting (0: the kernel's default)
    origin: str = ""  # the Origin header a browser sends (a widget viewer's page); none when empty
    source: str = ""  # the local address to connect from (any of 127.0.0.0/8 on Linux: another visitor)


class Connection(asyncio.Protocol):
    """One websocket; what it receives in the client's `window` is counted into `tally`."""

    def __init__(self, target: Target, tally: Tally, window: Window, first_frame: str | None) -> None:
        self.target = target
        self.tally = tally
        self.window = window  # shared by every connection of the client
        self.first_frame = first_frame  # the message type that completes the connect (None: the 101)
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()  # the TCP connection ended
        self.refusal: str | None = None
        self.close_code: int | None = None
        self.frames = 0  # quotes frames received since the last window began
        self.last_quote_ms = 0  # when the last quotes frame arrived (epoch ms)
        # Called with every message but quotes once the connection is ready (limits, subscribed, error…).
        self.on_message: Callable[[dict[str, Any]], None] | None = None
        self.interval = 0.0  # seconds between frames when throttled
        self._transport: asyncio.Transport | None = None
        self._key = base64.b64encode(os.urandom(16))
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._handshaking = True
        self._next_frame_at = 0.0
        self._resume: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # a TCP connection
        target = self.target
        lines = [f"GET {target.path} HTTP/1.1", f"Host: {target.host}:{target.port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {self._key.decode()}",
                 "Sec-WebSocket-Version: 13"]  # fmt: skip
        if target.cookie:
            lines.append(f"Cookie: {target.cookie}")
        if target.origin:
            lines.append(f"Origin: {target.origin}")
        self._transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._handshaking and not self._handshake():
            return
        self._read_frames()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_code is None:
            self.close_code = ABNORMAL
        self._fail(f"closed {self.close_code} before it was ready")
        if not self.lost.done():
            self.lost.set_result(None)
        if self._resume is not None:
            self._resume.cancel()

    # -- reading -----------------------------------------------------------------------------
    def _handshake(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        self._handshaking = False
        accept = base64.b64encode(hashlib.sha1(self._key + GUID).digest()).decode()  # noqa: S324 (RFC 6455)
        if " 101 " not in head[0] + " " or f"sec-websocket-accept: {accept}".lower() not in (h.lower() for h in head):
            self._fail(f"handshake refused: {head[0]}")
            self.close()
            return False
        if self.first_frame is None:
            self._succeed()
        return True

    def _read_frames(self) -> None:
        buffer, pos, size = self._buffer, 0, len(self._buffer)
        received_ms = time.time_ns() // 1_000_000
        while size - pos >= 2:
            if self.interval and not self._may_read():
                break
            first, length = buffer[pos], buffer[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length, start = int.from_bytes(buffer[pos + 2 : pos + 4]), pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, start = int.from_bytes(buffer[pos + 2 : pos + 10]), pos + 10
            if size - start < length:
                break
            pos = start + length
            self._frame(first, bytes(buffer[start:pos]), received_ms)
        del buffer[:pos]

    def _frame(self, first: int, payload: bytes, received_ms: int) -> None:
        opcode = first & 0x0F
        if opcode in (OP_TEXT, OP_CONTINUATION):
            if not first & 0x80:  # a fragment: wait for the final one
                self._fragments.append(payload)
                return
            if self._fragments:
                payload, self._fragments = b"".join([*self._fragments, payload]), []
            self._message(payload, received_ms)
        elif opcode == OP_PING:
            self._send(0xA, payload)
        elif opcode == OP_CLOSE:
            self.close_code = int.from_bytes(payload[:2]) if len(payload) >= 2 else NO_STATUS
            self.close()

    def _message(self, payload: bytes, received_ms: int) -> None:
        message = orjson.loads(payload)
        kind = message.get("type")
        if kind == "quotes":
            self.frames += 1
            self.last_quote_ms = received_ms
            tally, window = self.tally, self.window
            if window.open:
                tally.frames += 1
            start, end, histogram = window.start_ms, window.end_ms, tally.histogram
            for quote in message["quotes"]:
                ts = quote["ts"]
                if start <= ts < end:
                    histogram[min(max(received_ms - ts, 0), LATENCY_LIMIT_MS)] += 1
                    tally.quotes += 1
        elif not self.ready.done():
            if kind == self.first_frame:
                self.last_quote_ms = received_ms  # a snapshot carries the last quotes
                self._succeed()
            else:
                self._fail(f"{kind}: {message.get('code')}")
        elif self.on_message is not None:
            self.on_message(message)

    # -- throttling (slow readers) -----------------------------------------------------------
    def throttle(self, frames_per_second: float | None) -> None:
        """Read at most this many frames per second (None: as fast as they come)."""
        self.interval = 1 / frames_per_second if frames_per_second else 0.0
        self._next_frame_at = time.monotonic()
        if not self.interval:
            self._wake()

    def _may_read(self) -> bool:
        now = time.monotonic()
        if now < self._next_frame_at:
            if self._resume is None and self._transport is not None:
                self._transport.pause_reading()
                self._resume = asyncio.get_running_loop().call_later(self._next_frame_at - now, self._wake)
            return False
        self._next_frame_at = max(self._next_frame_at + self.interval, now)
        return True

    def _wake(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if self._transport is None or self._transport.is_closing():
            return
        self._read_frames()
        if self._resume is None:
            self._transport.resume_reading()

    # -- writing -----------------------------------------------------------------------------
    def _send(self, opcode: int, payload: bytes) -> None:
        """A masked frame, as a client must send (short payloads only: < 126 bytes)."""
        if self._transport is None or self._transport.is_closing():
            return
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def send_text(self, text: str) -> None:
        """A short client message (an action of the protocol: under 126 bytes)."""
        payload = text.encode()
        if len(payload) >= 126:
            raise ValueError(f"a message of {len(payload)} bytes: short messages only")
        self._send(OP_TEXT, payload)

    def close(self, code: int = 1000) -> None:
        if self.close_code is None:
            self.close_code = code
        if self._transport is not None and not self._transport.is_closing():
            self._send(OP_CLOSE, code.to_bytes(2, "big"))
            self._transport.close()

    def abort(self, *, reset: bool) -> None:
        """Vanish without a close frame: a reset (RST: SO_LINGER 0, as a middlebox dropping the path looks), or
        the socket closed as a killed browser's is (FIN, or RST when received data is still unread)."""
        if self.close_code is None:
            self.close_code = ABNORMAL
        if self._transport is None or self._transport.is_closing():
            return
        if reset:
            sock = self._transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._transport.abort()

    @property
    def open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def _succeed(self) -> None:
        if not self.ready.done():
            self.ready.set_result(None)

    def _fail(self, reason: str) -> None:
        if not self.ready.done():
            self.refusal = reason
            self.ready.set_result(None)


async def connect(target: Target, tally: Tally, window: Window, first_frame: str | None, seconds: float) -> Connection:
    """Open one connection and wait until it is ready (or refused: see `refusal`)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    if target.receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, target.receive_buffer)
    connection = Connection(target, tally, window, first_frame)
    try:
        async with asyncio.timeout(seconds):
            if target.source:
                sock.bind((target.source, 0))
            await loop.sock_connect(sock, ("127.0.0.1", target.port))
            await loop.create_connection(lambda: connection, sock=sock)
            await connection.ready
    except (OSError, TimeoutError) as exc:
        sock.close()
        connection.close()
        connection.refusal = connection.refusal or f"{type(exc).__name__}: {exc}"
    return connection
