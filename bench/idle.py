"""The idle scenario: very many connections, each sent a quote every few seconds (tickerdeck only).

A dashboard left open all day costs memory more than CPU. After the systems, on a tickerdeck started
afresh, `--idle-connections` streams (default 20,000, over the run's organisations, each following
20–30 symbols as in the systems' workload) are opened from several load clients: one process may
hold at most ~19,000 sockets here (`ulimit -n` 20,000), so each client takes `--idle-per-client`.

1. Memory: the web processes' RSS (every worker) before and after opening them, no ticks flowing;
   per connection = the growth ÷ the connections timed (the first per organisation warm up first).
2. Latency: the publisher then ticks at the rate that sends each connection one quote every
   `--idle-quote-seconds` on average; over one window every client counts as in the systems' steps.
   Delivered = the sum over clients; p50/p99 = the highest of the clients' (each client's own
   percentiles: the merged p99 is at most that).
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from typing import Any

import psutil

from bench import report
from bench.load import NOISY_PCT, OtherLoad
from bench.processes import Controlled, python_module
from bench.runner import (
    DRAIN_SECONDS,
    MIN_GRACE_SECONDS,
    MIN_SETTLE_SECONDS,
    OPEN_TIMEOUT_SECONDS,
    Harness,
    cpu_seconds,
    rss_mb,
)
from bench.systems.tickerdeck import Tickerdeck
from bench.workload import Stream, streams_plan, subscriptions

IDLE_FIELDS = ("connections", "opened", "refused", "clients", "seconds", "connects_per_s", "connect_p99_ms",
               "server_rss_mb_before", "server_rss_mb_after", "rss_kb_per_connection", "quote_every_s",
               "offered_ticks_per_s", "expected_quotes_per_s", "delivered_quotes_per_s", "delivered_ratio", "p50_ms",
               "p99_ms", "max_ms", "server_cpu_pct", "machine_cpu_pct", "other_cpu_pct", "noisy")  # fmt: skip


def idle_empty() -> dict[str, Any]:
    return dict.fromkeys(IDLE_FIELDS)


def _shares(streams: list[Stream], clients: int) -> list[list[Stream]]:
    return [streams[index::clients] for index in range(clients)]


def run_idle(h: Harness, system: Tickerdeck, symbols: list[str]) -> None:
    c = h.config
    streams = streams_plan(c.idle_connections, organisations=c.organisations, symbols=symbols, seed=c.seed + 1)
    clients = [h.client] + [
        Controlled(f"client-{index}", python_module("bench.client"), dict(os.environ), h.context.log_dir)
        for index in range(1, math.ceil(len(streams) / c.idle_per_client))
    ]
    result = h.results.idle = {**idle_empty(), "connections": len(streams), "clients": len(clients),
                               "quote_every_s": c.idle_quote_seconds}  # fmt: skip
    print(f"\nidle: {len(streams)} connections from {len(clients)} load clients, a quote every "
          f"{c.idle_quote_seconds} s each", flush=True)  # fmt: skip
    try:
        with system.start(h.context) as running:
            warm, rest = streams[: c.organisations], streams[c.organisations :]
            _open(h, [h.client], [warm], system, running.port)
            time.sleep(max(c.warmup, MIN_SETTLE_SECONDS))
            before = rss_mb(running.web)
            started = time.monotonic()
            answers = _open(h, clients, _shares(rest, len(clients)), system, running.port)
            seconds = time.monotonic() - started
            time.sleep(max(c.warmup, MIN_SETTLE_SECONDS))
            after = rss_mb(running.web)
            opened = sum(a["opened"] for a in answers)
            refused = Counter[str]()
            for answer in answers:
                refused.update(answer["refused"])
            result.update({
                "opened": opened + len(warm), "refused": dict(refused), "seconds": round(seconds, 1),
                "connects_per_s": round(opened / seconds, 1) if seconds else None,
                "connect_p99_ms": max((a["connect_p99_ms"] or 0 for a in answers), default=None),
                "server_rss_mb_before": round(before, 1), "server_rss_mb_after": round(after, 1),
                "rss_kb_per_connection": round((after - before) * 1024 / opened, 1) if opened else None,
            })  # fmt: skip
            print(f"  opened {result['opened']}/{len(streams)} in {seconds:.1f} s; server RSS {before:.0f} -> "
                  f"{after:.0f} MB = {result['rss_kb_per_connection']} KB per connection", flush=True)  # fmt: skip
            _stream(h, clients, running.web, streams, result)
            for client in clients:
                client.request("close_all", timeout=120)
            time.sleep(DRAIN_SECONDS)
    finally:
        for client in clients[1:]:
            client.stop()


def _open(h: Harness, clients: list[Controlled], shares: list[list[Stream]], system: Tickerdeck,
          port: int) -> list[dict[str, Any]]:  # fmt: skip
    """Every client opens its share at once; their answers."""
    for client, share in zip(clients, shares, strict=True):
        targets = [{**vars(system.target(stream)), "slow": False} for stream in share]
        client.send("open", port=port, targets=targets, first_frame=system.first_frame,
                    concurrency=h.config.concurrency, connect_timeout=OPEN_TIMEOUT_SECONDS)  # fmt: skip
    longest = max(len(share) for share in shares)
    return [client.answer("open", timeout=OPEN_TIMEOUT_SECONDS + longest / 20) for client in clients]


def _stream(h: Harness, clients: list[Controlled], web: list[Any], streams: list[Stream],
            result: dict[str, Any]) -> None:  # fmt: skip
    """One window at the rate that sends each connection a quote every `idle_quote_seconds`."""
    c = h.config
    per_tick = subscriptions(streams) / h.symbols  # connections reached by one tick, on average
    rate = len(streams) / c.idle_quote_seconds / per_tick
    h.publisher.request("weights", weights=Counter(symbol for stream in streams for symbol in stream.symbols))
    h.publisher.request("rate", rate=rate)
    time.sleep(max(c.warmup, 2 * c.idle_quote_seconds))
    grace = max(c.warmup, MIN_GRACE_SECONDS)
    other = OtherLoad.of(h.context.database_url)
    other.start()
    psutil.cpu_percent()  # starts the machine-wide reading
    cpu_before, started = cpu_seconds(web), time.monotonic()
    for client in clients:
        client.send("measure", seconds=c.idle_seconds, grace=grace)
    time.sleep(c.idle_seconds)
    wall = time.monotonic() - started
    server = 100 * (cpu_seconds(web) - cpu_before) / wall
    machine = psutil.cpu_percent() * (psutil.cpu_count() or 1)
    other_pct = other.percent(wall)
    answers = [client.answer("measure", timeout=c.idle_seconds + grace + 60) for client in clients]
    h.publisher.request("rate", rate=0)
    first = answers[0]
    ticks = h.publisher.request("window", start_ms=first["start_ms"], end_ms=first["end_ms"])
    window = first["window"]
    delivered = sum(a["all"]["quotes"] for a in answers) / window
    expected = ticks["deliveries"] / window
    result.update({
        "offered_ticks_per_s": round(ticks["published"] / window, 2), "expected_quotes_per_s": round(expected, 1),
        "delivered_quotes_per_s": round(delivered, 1),
        "delivered_ratio": round(delivered / expected, 4) if expected else None,
        "p50_ms": max((a["all"]["p50_ms"] or 0 for a in answers), default=None),
        "p99_ms": max((a["all"]["p99_ms"] or 0 for a in answers), default=None),
        "max_ms": max((a["all"]["max_ms"] or 0 for a in answers), default=None),
        "server_cpu_pct": round(server, 1), "machine_cpu_pct": round(machine, 1), "other_cpu_pct": other_pct,
        "noisy": other_pct > NOISY_PCT,
    })  # fmt: skip
    print(f"  {result['offered_ticks_per_s']} ticks/s: expected {result['expected_quotes_per_s']} quotes/s, delivered "
          f"{result['delivered_ratio']}, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, web CPU "
          f"{result['server_cpu_pct']} %, other {other_pct} %{' (noisy)' if result['noisy'] else ''}",
          flush=True)  # fmt: skip
    if not (expected and delivered >= report.SUSTAINED_SHARE * expected):
        h.results.note(f"idle: {result['delivered_ratio']} of the expected quotes delivered")
