"""The bench's arguments, with two presets: the full run (`make bench`) and `--quick`.

Every size can be shrunk from the command line (connections, organisations, rates, windows,
systems, output), so a test can run the whole pipeline in seconds.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.processes import ROOT

SYSTEM_NAMES = ("naive", "raw", "tickerdeck")
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "latest.json"
PRESETS: dict[str, dict[str, Any]] = {
    # ~8 minutes: each system ramps at 1,000 and 5,000 connections until it clearly fails; then
    # 2,000 widget token requests and 5,000 viewers of one widget (~1 minute more).
    "full": {"connections": [1000, 5000], "organisations": 50, "factor": 1.7, "steps": 14, "warmup": 1.5,
             "seconds": 3.0, "slow_seconds": 15.0, "widget_viewers": 5000, "token_requests": 2000,
             "idle_connections": 20000},
    # ~1.5 minutes: fewer connections and organisations, steeper ramp, short windows, 300 viewers.
    "quick": {"connections": [500], "organisations": 20, "factor": 2.2, "steps": 7, "warmup": 0.8,
              "seconds": 1.5, "slow_seconds": 3.0, "widget_viewers": 300, "token_requests": 500,
              "idle_connections": 0},
}  # fmt: skip
WIDGET_QUOTES = [1.0, 2.0, 4.0, 8.0]  # quotes/s each widget viewer is sent, step by step
PACE_TICKS = [2.0, 5.0]  # ticks/s of each symbol in the pace scenario: above the paced 1 a second


@dataclass(frozen=True)
class Config:
    quick: bool
    systems: list[str]
    connections: list[int]  # the first is the primary count: summary, connects/s, idle memory, slow readers
    organisations: int
    symbols: int
    rates: list[float] | None  # offered ticks/s; None: the geometric ladder below
    start_delivered: float  # quotes/s expected at the ladder's first step
    factor: float
    steps: int
    warmup: float
    seconds: float
    slow_seconds: float
    concurrency: int
    seed: int
    widget_viewers: int  # viewers of one widget after the systems (0: no widget scenario)
    widget_symbols: int
    widget_quotes: list[float]  # quotes per second per viewer at each step
    token_requests: int
    token_concurrency: int
    pace_symbols: int  # the most followed symbols ticked in the pace scenario (0: no pace scenario)
    pace_ticks: list[float]  # ticks/s of each of those symbols, step by step
    pace_max: int  # the throttle every connection then asks for (updates per second per symbol)
    idle_connections: int  # the idle scenario's connections (0: none)
    idle_quote_seconds: float  # each is sent a quote this often, on average
    idle_seconds: float  # its measuring window
    idle_per_client: int  # connections per load client (a process holds at most ~19,000 sockets here)
    output: Path
    database_url: str | None
    redis_url: str | None
    skip_bootstrap: bool

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "output": str(self.output)}


def _numbers(kind: type[int] | type[float]) -> Any:
    return lambda text: [kind(part) for part in text.split(",") if part]


def _systems(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = set(names) - set(SYSTEM_NAMES)
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"systems are {', '.join(SYSTEM_NAMES)} (got {text!r})")
    return names


def parse(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Streaming benchmark: naive, raw, tickerdeck.")
    parser.add_argument("--quick", action="store_true", help="the short preset (make bench-quick)")
    parser.add_argument("--systems", type=_systems, default=list(SYSTEM_NAMES), help="comma-separated, in run order")
    parser.add_argument("--connections", type=_numbers(int), help="comma-separated counts (first: the primary)")
    parser.add_argument("--organisations", type=int)
    parser.add_argument("--symbols", type=int, default=500, help="the first N symbols of the directory")
    parser.add_argument("--rates", type=_numbers(float), help="offered ticks/s for every step (instead of the ladder)")
    parser.add_argument("--start-delivered", type=float, default=1000.0, help="expected quotes/s at the first step")
    parser.add_argument("--factor", type=float, help="rate factor between steps")
    parser.add_argument("--steps", type=int, help="most steps per ramp")
    parser.add_argument("--warmup", type=float, help="seconds before each measuring window")
    parser.add_argument("--seconds", type=float, help="measuring window")
    parser.add_argument("--slow-seconds", type=float, help="windows of the slow-reader scenario")
    parser.add_argument("--concurrency", type=int, default=100, help="connection handshakes in flight")
    parser.add_argument("--seed", type=int, default=1)
    widget = parser.add_argument_group("widget scenario (tickerdeck, after the systems; --widget-viewers 0: none)")
    widget.add_argument("--widget-viewers", type=int, help="viewers of one widget")
    widget.add_argument("--widget-symbols", type=int, default=20, help="symbols the widget shows")
    widget.add_argument("--widget-quotes", type=_numbers(float), default=WIDGET_QUOTES,
                        help="quotes/s per viewer at each step (comma-separated)")  # fmt: skip
    widget.add_argument("--token-requests", type=int, help="POSTs to the widget's token endpoint")
    widget.add_argument("--token-concurrency", type=int, default=50, help="token requests in flight")
    pace = parser.add_argument_group("pace scenario (tickerdeck at the largest count; --pace-symbols 0: none)")
    pace.add_argument("--pace-symbols", type=int, default=20, help="the most followed symbols that tick")
    pace.add_argument("--pace-ticks", type=_numbers(float), default=PACE_TICKS,
                      help="ticks/s of each of those symbols, at each step (comma-separated)")  # fmt: skip
    pace.add_argument("--pace-max", type=int, default=1, help="max_per_second of every connection's throttle")
    idle = parser.add_argument_group("idle scenario (tickerdeck, last; --idle-connections 0: none)")
    idle.add_argument("--idle-connections", type=int, help="connections, each sent a quote every few seconds")
    idle.add_argument("--idle-quote-seconds", type=float, default=3.0, help="seconds between two quotes of one")
    idle.add_argument("--idle-seconds", type=float, default=10.0, help="its measuring window")
    idle.add_argument("--idle-per-client", type=int, default=9000, help="connections per load client process")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--database-url", help="use this database as it is (default: tickerdeck_bench)")
    parser.add_argument("--redis-url")
    parser.add_argument("--skip-bootstrap", action="store_true", help="the database is already set up")
    args = vars(parser.parse_args(argv))
    preset = PRESETS["quick" if args["quick"] else "full"]
    for name, value in preset.items():
        if args[name] is None:
            args[name] = value
    if not args["connections"] or min(args["connections"]) < 1 or args["organisations"] < 1:
        parser.error("give at least one connection count and one organisation")
    if args["widget_viewers"] < 0 or (args["widget_viewers"] and not (
            args["widget_quotes"] and args["token_requests"] > 0 and args["token_concurrency"] > 0
            and 0 < args["widget_symbols"] <= args["symbols"])):  # fmt: skip
        parser.error("a widget scenario needs quotes per viewer, token requests, concurrency and symbols")
    if args["pace_symbols"] < 0 or (args["pace_symbols"] and not (
            args["pace_ticks"] and min(args["pace_ticks"]) > 0 and 1 <= args["pace_max"] <= 50)):  # fmt: skip
        parser.error("a pace scenario needs ticks per symbol above 0 and a pace from 1 to 50")
    if args["idle_connections"] < 0 or (args["idle_connections"] and not (
            args["idle_quote_seconds"] > 0 and args["idle_seconds"] > 0 and args["idle_per_client"] > 0)):  # fmt: skip
        parser.error("an idle scenario needs seconds between quotes, a window and connections per client above 0")
    return Config(**args)
