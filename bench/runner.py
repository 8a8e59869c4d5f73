"""Runs the scenarios against one system after another, with the same publisher and load client.

Per system and connection count: start it, open the planned streams (timing the connects and the
server's memory per idle connection), then ramp the tick rate until it clearly fails. For
tickerdeck at the primary count, the slow-reader scenario follows the ramp.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import psutil

from bench import report
from bench.config import Config
from bench.load import NOISY_PCT, OtherLoad
from bench.processes import ChildError, Controlled
from bench.report import Results, Row
from bench.systems import Context, Running, System
from bench.workload import Stream, rates_ladder, subscriptions

OPEN_TIMEOUT_SECONDS = 60.0
MIN_SETTLE_SECONDS = 0.5  # after the connects, before reading the server's memory (at least the warm-up)
RECOVER_SECONDS = 2.0  # ticks off after a ramp that overloaded the server
DRAIN_SECONDS = 1.0  # after closing every connection, before the server stops (it gives back stream leases)
SLOW_FACTOR = 10
MIN_GRACE_SECONDS = 0.5  # a quote later than this after its window is counted as not delivered
FAILED_STEPS_TO_STOP = 2


@dataclass
class Harness:
    config: Config
    context: Context
    client: Controlled
    publisher: Controlled
    redis: psutil.Process | None
    symbols: int
    results: Results


@dataclass(frozen=True)
class Opened:
    """The streams that are open, and how many quotes one tick brings them on average."""

    planned: int
    streams: list[Stream]
    per_tick: float  # subscriptions / symbols


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def rss_mb(processes: list[psutil.Process]) -> float:
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total / 2**20


class Window:
    """One measuring window: the client's counts, the publisher's ticks, every process's CPU.

    The client counts the quotes whose source `ts` falls in the window, waiting `grace` seconds
    after it for late ones; `then` runs at the window's end (the next step's rate goes up while
    the grace runs, which saves a warm-up per step).
    """

    def __init__(self, harness: Harness, running: Running) -> None:
        self.harness, self.running = harness, running
        redis = [harness.redis] if harness.redis else []
        self._sources = {"server": running.processes, "web": running.web, "redis": redis}
        self._other = OtherLoad.of(harness.context.database_url)

    def measure(self, seconds: float, then: Callable[[], object] = lambda: None) -> dict[str, Any]:
        h, grace = self.harness, max(self.harness.config.warmup, MIN_GRACE_SECONDS)
        before = {name: cpu_seconds(processes) for name, processes in self._sources.items()}
        psutil.cpu_percent()  # starts the machine-wide reading
        self._other.start()
        started = time.monotonic()
        h.client.send("measure", seconds=seconds, grace=grace)
        time.sleep(seconds)
        wall = time.monotonic() - started
        cpu = {name: 100 * (cpu_seconds(processes) - before[name]) / wall for name, processes in self._sources.items()}
        machine = psutil.cpu_percent() * (psutil.cpu_count() or 1)  # 100 % = one core
        other = self._other.percent(time.monotonic() - started)
        then()
        result = h.client.answer("measure", timeout=seconds + grace + 60)
        ticks = h.publisher.request("window", start_ms=result["start_ms"], end_ms=result["end_ms"])
        result.update({f"{name}_cpu_pct": value for name, value in cpu.items()})
        result["machine_cpu_pct"] = machine
        result["other_cpu_pct"] = other
        result["offered"] = ticks["published"] / result["window"]
        result["expected"] = ticks["deliveries"] / result["window"]
        result["subscribers"] = ticks["subscribers"]
        result["rss_mb"] = rss_mb(self.running.processes)
        return result


def step_row(system: str, opened: Opened, organisations: int, result: dict[str, Any]) -> Row:
    window, tally, frames = result["window"], result["all"], result["all"]["frames"]
    offered, expected = result["offered"], result["expected"]
    delivered = tally["quotes"] / window
    return {
        "system": system, "connections": opened.planned, "organisations": organisations,
        "offered_ticks_per_s": round(offered, 2), "expected_ticks_per_s": round(expected, 1),
        "delivered_ticks_per_s": round(delivered, 1), "frames_per_s": round(frames / result["frames_window"], 1),
        "p50_ms": tally["p50_ms"], "p99_ms": tally["p99_ms"], "server_cpu_pct": round(result["server_cpu_pct"], 1),
        "client_cpu_pct": round(result["cpu_pct"], 1), "rss_mb": round(result["rss_mb"], 1),
        "delivered_pct": round(100 * delivered / expected, 2) if expected else None, "max_ms": tally["max_ms"],
        "redis_cpu_pct": round(result["redis_cpu_pct"], 1) if result["redis_cpu_pct"] else None,
        "machine_cpu_pct": round(result["machine_cpu_pct"], 1), "other_cpu_pct": result["other_cpu_pct"],
        "noisy": result["other_cpu_pct"] > NOISY_PCT,
        "client_saturated": result["cpu_pct"] >= report.CLIENT_SATURATED_PCT,
        "open_connections": result["open"], "closed": result["closed"],
    }  # fmt: skip


def open_streams(h: Harness, system: System, running: Running, streams: list[Stream]) -> Opened:
    """Open every stream, one per organisation first (rooms, pools and caches warm up), then the rest.

    The rest are timed (connects per second, to the first frame the system sends) and the server's
    memory growth over them, with no ticks flowing, is its memory per idle connection.
    """
    targets = [{**asdict(system.target(stream)), "slow": stream.slow} for stream in streams]
    split = min(h.config.organisations, len(targets) - 1) if len(targets) > 1 else len(targets)
    refused: list[int] = []
    answers = []
    rss = []
    other = OtherLoad.of(h.context.database_url)
    for offset, batch in ((0, targets[:split]), (split, targets[split:])):
        if batch:
            other.start()
            psutil.cpu_percent()  # starts the machine-wide reading
            started, cpu_before = time.monotonic(), (cpu_seconds(running.processes), cpu_seconds([h.client.ps]))
            answer = h.client.request("open", port=running.port, targets=batch, first_frame=system.first_frame,
                                      concurrency=h.config.concurrency, connect_timeout=OPEN_TIMEOUT_SECONDS,
                                      timeout=OPEN_TIMEOUT_SECONDS + len(batch) / 20)  # fmt: skip
            wall = time.monotonic() - started
            answer["other_cpu_pct"] = other.percent(wall)
            answer["cpu_pct"] = {"server": round(100 * (cpu_seconds(running.processes) - cpu_before[0]) / wall, 1),
                                 "client": round(100 * (cpu_seconds([h.client.ps]) - cpu_before[1]) / wall, 1),
                                 "machine": round(psutil.cpu_percent() * (psutil.cpu_count() or 1), 1)}  # fmt: skip
            refused += [offset + index for index in answer["refused_at"]]
            answers.append(answer)
            time.sleep(max(h.config.warmup, MIN_SETTLE_SECONDS))
        rss.append(rss_mb(running.web) * 2**20)
    if refused:
        reasons = {k: v for a in answers for k, v in a["refused"].items()}
        h.results.note(f"{system.name}: {len(refused)} of {len(streams)} connections refused: {reasons}")
    timed = answers[-1]
    refused_set = set(refused)
    opened = [stream for index, stream in enumerate(streams) if index not in refused_set]
    h.results.opens.append({
        "system": system.name, "connections": len(streams), "opened": len(opened), "refused": len(refused),
        "connects_per_s": round(timed["opened"] / timed["seconds"], 1) if timed["opened"] else None,
        "idle_kb_per_connection": round((rss[1] - rss[0]) / 1024 / timed["opened"], 1)
        if timed["opened"] and len(answers) == 2 else None,
        "connect_p50_ms": timed["connect_p50_ms"], "connect_p99_ms": timed["connect_p99_ms"],
        "server_cpu_pct": timed["cpu_pct"]["server"], "client_cpu_pct": timed["cpu_pct"]["client"],
        "machine_cpu_pct": timed["cpu_pct"]["machine"],
        "other_cpu_pct": timed["other_cpu_pct"], "noisy": timed["other_cpu_pct"] > NOISY_PCT,
    })  # fmt: skip
    print(f"  opened {len(opened)}/{len(streams)} in {sum(a['seconds'] for a in answers):.1f} s "
          f"({h.results.opens[-1]['connects_per_s']} connects/s, each p99 {timed['connect_p99_ms']} ms, CPU % "
          f"{timed['cpu_pct']}, other {timed['other_cpu_pct']} %; "
          f"{h.results.opens[-1]['idle_kb_per_connection']} KB per idle connection)")  # fmt: skip
    h.publisher.request("weights", weights=Counter(symbol for stream in opened for symbol in stream.symbols))
    return Opened(len(streams), opened, subscriptions(opened) / h.symbols)


def ramp(h: Harness, system: System, running: Running, opened: Opened) -> list[Row]:
    """Rising rates until FAILED_STEPS_TO_STOP steps in a row clearly fail (or a process dies)."""
    c = h.config
    rates = c.rates or rates_ladder(fanout=opened.per_tick, start_delivered=c.start_delivered, factor=c.factor,
                                    steps=c.steps)  # fmt: skip
    rows: list[Row] = []
    failures = 0
    window = Window(h, running)
    h.publisher.request("rate", rate=rates[0])
    time.sleep(c.warmup)
    for index, rate in enumerate(rates):
        following = rates[index + 1] if index + 1 < len(rates) else 0.0
        result = window.measure(c.seconds, then=partial(h.publisher.request, "rate", rate=following))
        row = step_row(system.name, opened, c.organisations, result)
        rows.append(row)
        h.results.runs.append(row)
        print("  " + report.table_line(row), flush=True)
        if result["subscribers"] < 1:
            h.results.note(f"{system.name}: nobody subscribed to the tick channel at {rate} ticks/s")
        try:
            running.check()
        except ChildError as exc:
            h.results.note(f"{system.name} stopped its ramp at {rate} ticks/s: {exc}")
            break
        failures = failures + 1 if report.failed(row) else 0
        if failures >= FAILED_STEPS_TO_STOP:
            print(f"  {system.name}: {failures} steps in a row under 99 % delivered or p99 > 1 s: ramp stopped")
            break
    h.publisher.request("rate", rate=0)
    return rows


def slow_readers(h: Harness, running: Running, opened: Opened, rows: list[Row]) -> Row:
    """At half the highest sustained rate, every 20th client reads ten times slower than it did."""
    sustained = [r for r in rows if report.sustained(r)]
    if sustained:
        rate = max(r["offered_ticks_per_s"] for r in sustained) / 2
    else:
        rate = rows[0]["offered_ticks_per_s"] if rows else 1.0
        h.results.note(f"slow readers: no sustained step; run at the first step's rate ({rate} ticks/s)")
    slow_clients = sum(stream.slow for stream in opened.streams)
    print(f"  slow readers: {slow_clients} of {len(opened.streams)} clients at {rate:.1f} ticks/s")
    time.sleep(RECOVER_SECONDS)
    h.publisher.request("rate", rate=rate)
    time.sleep(2 * h.config.warmup)
    window = Window(h, running)
    baseline = window.measure(h.config.slow_seconds)
    throttled = h.client.request("throttle", factor=SLOW_FACTOR)
    rss_start = rss_mb(running.web)
    loaded = window.measure(h.config.slow_seconds)
    rss_end = rss_mb(running.web)
    h.client.request("throttle", factor=None)
    h.publisher.request("rate", rate=0)
    before, after = baseline["fast"]["p99_ms"], loaded["fast"]["p99_ms"]
    rise = round(100 * (after - before) / max(before, 1), 1) if before is not None and after is not None else None
    print(f"  slow clients read {throttled['fps_min'] or 0:.2f}-{throttled['fps_max'] or 0:.2f} frames/s; "
          f"fast p99 {before} -> {after} ms; slow clients got {loaded['slow']['quotes'] / loaded['window']:.0f} "
          f"quotes/s (p99 {loaded['slow']['p99_ms']} ms); closed {loaded['slow_closed']}")  # fmt: skip
    return {
        "offered_ticks_per_s": round(loaded["offered"], 2), "fast_p99_ms_baseline": before,
        "fast_p99_ms_with_slow": after, "fast_p99_rise_pct": rise, "server_rss_mb_start": round(rss_start, 1),
        "server_rss_mb_end": round(rss_end, 1), "slow_clients": slow_clients,
        "slow_closed_4408": int(loaded["slow_closed"].get("4408", 0)),
        "slow_p99_ms": loaded["slow"]["p99_ms"],
        "slow_quotes_per_s": round(loaded["slow"]["quotes"] / loaded["window"], 1),
        "slow_frames_per_s_each": [throttled["fps_min"], throttled["fps_max"]],
    }  # fmt: skip


def pace_saving(h: Harness, running: Running, opened: Opened) -> dict[str, Any]:
    """What a viewer-chosen pace saves: the same ticks without, then with, every connection's throttle.

    The publisher ticks only the most followed symbols, each several times a second (a pace of one
    update a second matters only for a symbol that ticks faster); the windows are measured first
    with no throttle, then after every client sent `{"action":"throttle","max_per_second":N}` (a
    throttle is not lifted, so this comes last on an open system).
    """
    c = h.config
    followers = Counter(symbol for stream in opened.streams for symbol in stream.symbols)
    hot = [symbol for symbol, _ in followers.most_common(c.pace_symbols)]
    print(f"  pace: {len(hot)} most followed symbols, {', '.join(map(str, c.pace_ticks))} ticks/s each; "
          f"without, then with max_per_second {c.pace_max}")  # fmt: skip
    time.sleep(RECOVER_SECONDS)
    h.publisher.request("focus", symbols=hot)
    window, steps = Window(h, running), []
    try:
        for paced in (None, c.pace_max):
            if paced is not None:
                h.client.request("pace", max_per_second=paced)
            for per_symbol in c.pace_ticks:
                h.publisher.request("rate", rate=per_symbol * len(hot))
                time.sleep(c.warmup)
                result = window.measure(c.seconds)
                row = {**step_row("tickerdeck", opened, c.organisations, result), "pace_max_per_second": paced,
                       "ticks_per_symbol_per_s": per_symbol,
                       "web_cpu_pct": round(result["web_cpu_pct"], 1)}  # fmt: skip
                print(f"  {'paced' if paced else 'full'} {report.table_line(row)}", flush=True)
                steps.append(row)
    finally:
        h.publisher.request("rate", rate=0)
        h.publisher.request("focus", symbols=None)
    return {"connections": opened.planned, "symbols": len(hot), "max_per_second": c.pace_max, "steps": steps,
            "saving": [pace_compare(steps, per_symbol, c.pace_max) for per_symbol in c.pace_ticks]}  # fmt: skip


def pace_compare(steps: list[Row], per_symbol: float, paced: int) -> dict[str, Any]:
    """One tick rate, without and with the pace: server (and web process) CPU, frames and quotes, the saving."""
    full, slow = (next(r for r in steps if r["ticks_per_symbol_per_s"] == per_symbol
                       and r["pace_max_per_second"] == pace) for pace in (None, paced))  # fmt: skip

    def saved(name: str) -> float | None:
        return round(100 * (1 - slow[name] / full[name]), 1) if full[name] else None

    return {"ticks_per_symbol_per_s": per_symbol, "server_cpu_pct": [full["server_cpu_pct"], slow["server_cpu_pct"]],
            "web_cpu_pct": [full["web_cpu_pct"], slow["web_cpu_pct"]], "server_cpu_saved_pct": saved("server_cpu_pct"),
            "web_cpu_saved_pct": saved("web_cpu_pct"), "frames_per_s": [full["frames_per_s"], slow["frames_per_s"]],
            "quotes_per_s": [full["delivered_ticks_per_s"], slow["delivered_ticks_per_s"]],
            "p99_ms": [full["p99_ms"], slow["p99_ms"]]}  # fmt: skip


def run_system(h: Harness, system: System, workloads: dict[int, list[Stream]]) -> None:
    primary, largest = h.config.connections[0], max(h.config.connections)
    for count, streams in workloads.items():
        print(f"\n{system.name}, {count} connections over {h.config.organisations} organisations:", flush=True)
        try:
            with system.start(h.context) as running:
                opened = open_streams(h, system, running, streams)
                rows = ramp(h, system, running, opened)
                if system.name == "tickerdeck" and count == primary:
                    h.results.slow_reader = slow_readers(h, running, opened, rows)
                if system.name == "tickerdeck" and count == largest and h.config.pace_symbols:
                    h.results.pace = pace_saving(h, running, opened)
                h.client.request("close_all")
                time.sleep(DRAIN_SECONDS)
        except ChildError as exc:
            if not (h.client.alive() and h.publisher.alive()):
                raise  # the bench itself is broken: no other system can be measured
            h.results.note(f"{system.name} at {count} connections failed: {exc}")
            with contextlib.suppress(ChildError):
                h.publisher.request("rate", rate=0)
                h.client.request("close_all")


def max_streams_needed(config: Config) -> int:
    """Room for every stream of every count at once (a stopped server's leases lapse only later)."""
    return 2 * sum(math.ceil(n / config.organisations) for n in [*config.connections, config.idle_connections]) + 10
