"""A fixed number of HTTP/1.1 requests to one URL with bounded concurrency, on keep-alive connections.

Built for the load client (uvloop) as bench.wsclient is: no HTTP library, only what a small JSON
answer from uvicorn needs (Content-Length or chunked bodies). Each of `concurrency` workers keeps
one connection (a new one after an error or `Connection: close`), as a proxy in front of the
servers would, and takes the next request as soon as its previous answer is read.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Request:
    port: int
    method: str
    host: str  # the Host header (the server is always 127.0.0.1:port)
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    source: str = ""  # the local address to connect from (127.0.0.0/8: another visitor); any when empty

    def encoded(self) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Content-Length: 0",
                 *(f"{name}: {value}" for name, value in self.headers.items())]  # fmt: skip
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class Outcome:
    """What the requests got: latencies of the 200s, errors by kind, the bodies of the 200s."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0

    def summary(self, seconds: float) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        ok = len(ordered)
        return {
            "succeeded": ok, "errors": dict(self.errors), "seconds": seconds, "connections": self.connections,
            "requests_per_s": ok / seconds if seconds > 0 else None,
            "p50_ms": percentile(ordered, 50), "p99_ms": percentile(ordered, 99),
            "max_ms": round(ordered[-1], 2) if ordered else None,
        }  # fmt: skip


def percentile(ordered: list[float], p: float) -> float | None:
    """The nearest-rank percentile of an ascending list (None when empty)."""
    if not ordered:
        return None
    rank = max(1, min(len(ordered), -(-len(ordered) * p // 100)))  # ceil(n * p / 100)
    return round(ordered[int(rank) - 1], 2)


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the server keeps the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEAD_BYTES:
        raise ValueError("response head too large")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")  # the last chunk's end (no trailers from uvicorn)
        body = b"".join(parts)
    else:
        body = await reader.read()  # until the server closes
        return status, body, False
    return status, body, headers.get("connection", "").lower() != "close"


async def requests_run(
    request: Request, *, count: int, concurrency: int, request_seconds: float
) -> tuple[Outcome, float]:
    """Send `count` requests, at most `concurrency` at a time, each given `request_seconds`;
    (outcome, seconds from the first to the last)."""
    outcome, encoded = Outcome(), request.encoded()
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(request_seconds):
                        if writer is None or reader is None:
                            local = (request.source, 0) if request.source else None
                            reader, writer = await asyncio.open_connection("127.0.0.1", request.port, local_addr=local)
                            outcome.connections += 1
                        writer.write(encoded)
                        status, body, keep = await _response(reader)
                except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
                    outcome.errors[type(exc).__name__] += 1
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    continue
                if status == 200:
                    outcome.latencies_ms.append(1000 * (time.perf_counter() - started))
                    outcome.bodies.append(body)
                else:
                    outcome.errors[f"http {status}"] += 1
                if not keep and writer is not None:
                    writer.close()
                    reader = writer = None
        finally:
            if writer is not None:
                writer.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, count)))))
    return outcome, time.monotonic() - started
