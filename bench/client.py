"""The load client: one process that opens every connection and measures what they receive.

It runs apart from the orchestrator and the systems under test, on uvloop with the fast reader of
bench.wsclient, and reports its own CPU with every measurement: a client near 100 % of a core is
the limit of that step, not the server.

    python -m bench.client   (driven by the orchestrator over stdin/stdout, bench.wire)

Commands:
- `open {"port", "targets": [{"host", "path", "cookie", "origin", "slow"}], "first_frame", "concurrency",
  "connect_timeout"}` → {"opened", "refused": {reason: count}, "refused_at": [index], "seconds",
  "connect_p50_ms", "connect_p99_ms"} (each connect timed from its turn to its first frame)
- `measure {"seconds", "grace"}`: counts the quotes with a source `ts` in the next `seconds`, waiting
  `grace` seconds more for late ones → {"start_ms", "end_ms", "window", "cpu_pct",
  "all"|"fast"|"slow": tally, "open", "closed", "slow_closed"} (the answer comes after the grace)
- `throttle {"factor"}`: slow connections read `factor` times fewer frames than in the last window
  (null: full speed again) → {"throttled", "fps_min", "fps_max"}
- `pace {"max_per_second"}`: every connection sends `{"action":"throttle","max_per_second":N}` → {"paced"}
- `close_all` → {"closed"}
- `http {"port", "method", "host", "path", "headers", "requests", "concurrency", "request_timeout"}`: that many
  requests on keep-alive connections (bench.httpload) → {"succeeded", "errors": {kind: count}, "seconds",
  "requests_per_s", "p50_ms", "p99_ms", "max_ms", "connections", "bodies": [distinct 200 bodies]}
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from bench import httpload, wire
from bench.wsclient import Connection, Tally, Target, Window, connect
from config.server import open_files_raise

SLOW_RECEIVE_BUFFER = 8192  # a slow reader's unread data backs up into the server quickly
MIN_SLOW_FPS = 0.1  # a stream too thin to slow down further still reads now and then


class LoadClient:
    def __init__(self) -> None:
        self.connections: list[Connection] = []
        self.fast, self.slow = Tally(), Tally()
        self.window = Window()
        self.rates: dict[Connection, float] = {}  # frames per second of each connection in the last window

    async def open(self, command: wire.Message) -> wire.Message:
        gate = asyncio.Semaphore(int(command["concurrency"]))
        first_frame, timeout = command.get("first_frame"), float(command["connect_timeout"])

        connect_ms: list[float] = []

        async def one(spec: dict[str, Any]) -> Connection:
            target = Target(int(command["port"]), spec["host"], spec["path"], spec.get("cookie", ""),
                            SLOW_RECEIVE_BUFFER if spec.get("slow") else 0, spec.get("origin", ""))  # fmt: skip
            async with gate:
                begun = time.perf_counter()
                connection = await connect(target, self.slow if spec.get("slow") else self.fast,
                                           self.window, first_frame, timeout)  # fmt: skip
                if connection.refusal is None:
                    connect_ms.append(1000 * (time.perf_counter() - begun))
                return connection

        started = time.monotonic()
        results = await asyncio.gather(*(one(spec) for spec in command["targets"]))
        seconds = time.monotonic() - started
        refused = [index for index, c in enumerate(results) if c.refusal is not None]
        self.connections += [c for c in results if c.refusal is None]
        connect_ms.sort()
        return {"opened": len(results) - len(refused), "refused_at": refused, "seconds": seconds,
                "refused": dict(Counter(results[index].refusal for index in refused)),
                "connect_p50_ms": httpload.percentile(connect_ms, 50),
                "connect_p99_ms": httpload.percentile(connect_ms, 99)}  # fmt: skip

    async def measure(self, command: wire.Message) -> wire.Message:
        for tally in (self.fast, self.slow):
            tally.reset()
        for connection in self.connections:
            connection.frames = 0
        seconds, window = float(command["seconds"]), self.window
        cpu, started = time.process_time(), time.monotonic()
        window.start_ms = time.time_ns() // 1_000_000
        window.end_ms = window.start_ms + round(seconds * 1000)
        window.open = True
        await asyncio.sleep(seconds)
        window.open = False
        elapsed = time.monotonic() - started
        cpu_pct = 100 * (time.process_time() - cpu) / elapsed
        self.rates = {c: c.frames / elapsed for c in self.connections}
        await asyncio.sleep(float(command["grace"]))
        start_ms, end_ms = window.start_ms, window.end_ms
        window.start_ms = window.end_ms = 0
        closed = [c for c in self.connections if not c.open]
        return {
            "start_ms": start_ms, "end_ms": end_ms, "window": (end_ms - start_ms) / 1000, "frames_window": elapsed,
            "cpu_pct": cpu_pct, "all": self.fast.merged(self.slow).summary(),
            "fast": self.fast.summary(), "slow": self.slow.summary(),
            "open": len(self.connections) - len(closed),
            "closed": dict(Counter(str(c.close_code) for c in closed)),
            "slow_closed": dict(Counter(str(c.close_code) for c in closed if c.tally is self.slow)),
        }  # fmt: skip

    async def throttle(self, command: wire.Message) -> wire.Message:
        factor = command.get("factor")
        rates = []
        for connection in self.connections:
            if connection.tally is self.slow:
                fps = max(self.rates.get(connection, 0) / factor, MIN_SLOW_FPS) if factor else None
                connection.throttle(fps)
                rates.append(fps or 0.0)
        return {"throttled": len(rates), "fps_min": min(rates, default=None), "fps_max": max(rates, default=None)}

    async def pace(self, command: wire.Message) -> wire.Message:
        action = f'{{"action":"throttle","max_per_second":{int(command["max_per_second"])}}}'
        paced = [c for c in self.connections if c.open]
        for connection in paced:
            connection.send_text(action)
        await asyncio.sleep(0.1)  # let the messages go out
        return {"paced": len(paced)}

    async def close_all(self, command: wire.Message) -> wire.Message:
        closing, self.connections, self.rates = self.connections, [], {}
        for connection in closing:
            connection.close()
        await asyncio.sleep(0.1)  # let the close frames go out
        return {"closed": len(closing)}

    async def http(self, command: wire.Message) -> wire.Message:
        request = httpload.Request(int(command["port"]), command["method"], command["host"], command["path"],
                                   dict(command.get("headers") or {}))  # fmt: skip
        outcome, seconds = await httpload.requests_run(request, count=int(command["requests"]),
                                                       concurrency=int(command["concurrency"]),
                                                       request_seconds=float(command["request_timeout"]))  # fmt: skip
        bodies = sorted({body.decode(errors="replace") for body in outcome.bodies})
        return {**outcome.summary(seconds), "bodies": bodies}


async def main() -> None:
    client = LoadClient()
    await wire.serve({"open": client.open, "measure": client.measure, "throttle": client.throttle,
                      "pace": client.pace, "close_all": client.close_all, "http": client.http})  # fmt: skip


if __name__ == "__main__":
    open_files_raise()  # a socket per connection: thousands of them
    wire.run(main)
