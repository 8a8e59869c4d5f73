"""Throughput probe: one uvicorn and one `run_feed` process, many websocket clients in this process.

It creates its organisations (a private plan, an owner and a session each) in DATABASE_URL's
database, which must be set up (`manage.py bootstrap`), and removes them at the end. The servers get
the live tests' settings (tests/live.py), with this run's own Redis namespace.

    DATABASE_URL=postgres://… REDIS_URL=redis://… .venv/bin/python bench/stream_probe.py [--seconds 20]

DJANGO_SETTINGS_MODULE (default config.settings.test) is passed on to the servers, so another
configuration (another channel layer, say) can be compared.

Reported: quotes and frames delivered per second (summed over connections), latency (receive time
minus the quote's `ts`, p50/p99/max), CPU % and RSS of the server, the feed and this client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
LATENCY_LIMIT_MS = 60_000
SLICE_SECONDS = 5.0


@dataclass
class Histogram:
    """Latencies in whole milliseconds (0 to 60 s), cheap enough to record every quote."""

    counts: list[int] = field(default_factory=lambda: [0] * (LATENCY_LIMIT_MS + 1))
    total: int = 0

    def add(self, ms: int) -> None:
        self.counts[min(max(ms, 0), LATENCY_LIMIT_MS)] += 1
        self.total += 1

    def percentile(self, p: float) -> int:
        target, seen = p / 100 * self.total, 0
        for ms, count in enumerate(self.counts):
            seen += count
            if count and seen >= target:
                return ms
        return 0

    def maximum(self) -> int:
        return max((ms for ms, count in enumerate(self.counts) if count), default=0)


@dataclass
class Stats:
    measuring: bool = False
    connected: int = 0
    refused: list[str] = field(default_factory=list)
    closed: list[int | None] = field(default_factory=list)
    frames: int = 0
    quotes: int = 0
    latency: Histogram = field(default_factory=Histogram)
    slices: list[Histogram] = field(default_factory=list)  # latency of each SLICE_SECONDS of the window
    connect_seconds: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Stream:
    host: str
    session: str
    symbols: list[str]


async def stream(port: int, plan: Stream, stats: Stats, gate: asyncio.Semaphore) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    uri = f"ws://{plan.host}:{port}/ws/stock-market/?symbols={','.join(plan.symbols)}"
    async with gate:  # a bounded number of handshakes at once
        started = time.monotonic()
        ws = await connect(uri, host="127.0.0.1", port=port, additional_headers={"Cookie": f"sessionid={plan.session}"},
                           compression=None, proxy=None, open_timeout=60, close_timeout=2, max_size=None)  # fmt: skip
        first = orjson.loads(await ws.recv())
        stats.connect_seconds.append(time.monotonic() - started)
    if first["type"] != "snapshot":
        stats.refused.append(str(first.get("code")))
        await ws.close()
        return
    stats.connected += 1
    try:
        async for raw in ws:
            received = time.time_ns() // 1_000_000
            message = orjson.loads(raw)
            if stats.measuring and message["type"] == "quotes":
                stats.frames += 1
                stats.quotes += len(message["quotes"])
                current = stats.slices[-1]
                for quote in message["quotes"]:
                    stats.latency.add(received - quote["ts"])
                    current.add(received - quote["ts"])
    except ConnectionClosed:
        pass
    stats.closed.append(ws.close_code)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def measure(port: int, plans: list[Stream], seconds: float, watched: dict[str, psutil.Process]) -> dict[str, Any]:
    stats, gate = Stats(), asyncio.Semaphore(50)
    started = time.monotonic()
    tasks = [asyncio.create_task(stream(port, plan, stats, gate)) for plan in plans]
    while stats.connected + len(stats.refused) < len(plans) and time.monotonic() - started < 120:
        await asyncio.sleep(0.2)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError("a connection failed") from task.exception()
    connect_all = time.monotonic() - started
    await asyncio.sleep(2)  # warm-up: every symbol has been subscribed by the feed
    cpu_before = {name: cpu_seconds(process) for name, process in watched.items()}
    psutil.cpu_percent()  # starts the machine-wide measurement
    window_start = time.monotonic()
    stats.slices.append(Histogram())
    stats.measuring = True
    while (left := seconds - (time.monotonic() - window_start)) > 0:
        await asyncio.sleep(min(SLICE_SECONDS, left))
        stats.slices.append(Histogram())
    stats.measuring = False
    window = time.monotonic() - window_start
    cpu = {name: 100 * (cpu_seconds(process) - cpu_before[name]) / window for name, process in watched.items()}
    rss = {name: process.memory_info().rss / 1e6 for name, process in watched.items()}
    machine = psutil.cpu_percent() * psutil.cpu_count()  # in the same unit: 100 % = one core
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"stats": stats, "window": window, "connect_all": connect_all, "cpu": cpu, "rss": rss, "machine": machine}


def redis_process(url: str) -> psutil.Process | None:
    """The local Redis server's process, when this machine runs it."""
    import redis

    with contextlib.suppress(Exception):
        return psutil.Process(int(redis.Redis.from_url(url).info("server")["process_id"]))
    return None


def report(result: dict[str, Any], plans: list[Stream], organisations: int, ticks: str) -> str:
    stats: Stats = result["stats"]
    window: float = result["window"]
    per_connection = [len(plan.symbols) for plan in plans]
    connect = sorted(stats.connect_seconds)
    lines = [
        f"connections {stats.connected} accepted / {len(plans)} ({organisations} organisations, "
        f"{min(per_connection)}-{max(per_connection)} symbols each, "
        f"{len({s for plan in plans for s in plan.symbols})} distinct); refused {stats.refused or 'none'}",
        f"feed: simulated, {ticks} ticks/s; all connected in {result['connect_all']:.1f} s "
        f"(handshake + snapshot p50 {connect[len(connect) // 2] * 1000:.0f} ms, max {connect[-1] * 1000:.0f} ms)",
        f"window {window:.1f} s: quotes delivered {stats.quotes / window:,.0f}/s, "
        f"frames {stats.frames / window:,.0f}/s ({stats.quotes / max(stats.frames, 1):.1f} quotes per frame)",
        f"latency (receive − ts): p50 {stats.latency.percentile(50)} ms, p99 {stats.latency.percentile(99)} ms, "
        f"max {stats.latency.maximum()} ms; p50 of each {SLICE_SECONDS:.0f} s: "
        f"{[h.percentile(50) for h in stats.slices if h.total]} ms",
    ]
    lines += [f"{name}: CPU {result['cpu'][name]:.0f} %, RSS {result['rss'][name]:.0f} MB" for name in result["cpu"]]
    lines.append(f"machine: {psutil.cpu_count()} cores, CPU {result['machine']:.0f} % in all (100 % = one core), "
                 f"of which {result['machine'] - sum(result['cpu'].values()):.0f} % other processes")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--organisations", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--ticks", default="400", help="SIMULATED_TICKS_PER_SECOND of the feed (the tests' 400)")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from django.conf import settings

    from symbols.models import Symbol
    from tests.live import feed_process, stream_environment, uvicorn_process
    from tests.streaming.conftest import Committed

    directory = list(Symbol.objects.order_by("symbol").values_list("symbol", flat=True)[:500])
    rng = random.Random(1)
    committed = Committed()
    try:
        plan = committed.plan_sync(max_streams=args.connections, max_symbols_per_stream=30)
        tenants = [committed.tenant_sync(plan) for _ in range(args.organisations)]
        plans = [
            Stream(tenant.host, tenant.session, rng.sample(directory, rng.randint(20, 30)))
            for index in range(args.connections)
            for tenant in [tenants[index % len(tenants)]]
        ]
        env = {
            **stream_environment(SIMULATED_TICKS_PER_SECOND=args.ticks),
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"],  # the servers run what this runs
        }
        with feed_process(**env) as feed, uvicorn_process(env, echo=False) as server:
            feed.wait_leading()
            watched = {
                "server (uvicorn)": psutil.Process(server.process.pid),
                "feed (run_feed)": psutil.Process(feed.process.pid),
                "client (this process)": psutil.Process(),
            }
            if (redis := redis_process(settings.REDIS_URL)) is not None:
                watched["redis"] = redis
            run = asyncio.run
            with contextlib.suppress(ImportError):
                import uvloop

                run = uvloop.run
            result = run(measure(server.port, plans, args.seconds, watched))
        print(report(result, plans, args.organisations, args.ticks))
    finally:
        committed.cleanup()


if __name__ == "__main__":
    main()
