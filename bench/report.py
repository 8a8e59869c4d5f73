"""What a run found: the table on the terminal, the summary and bench/results/latest.json.

Every field of the JSON is always present; a figure that could not be measured is null, and the
reason is printed and kept in `summary.notes`.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

SUSTAINED_SHARE = 0.99  # of the expected quotes delivered
SUSTAINED_P99_MS = 100
FAILED_P99_MS = 1000
CLIENT_SATURATED_PCT = 90.0  # the load client near one full core: its own limit, not the server's

Row = dict[str, Any]
SLOW_READER_FIELDS = ("offered_ticks_per_s", "fast_p99_ms_baseline", "fast_p99_ms_with_slow", "fast_p99_rise_pct",
                      "server_rss_mb_start", "server_rss_mb_end", "slow_clients", "slow_closed_4408")  # fmt: skip
# The widget scenario (bench.widget): the JSON's `widget` object and its headline in `summary.widget`.
WIDGET_TOKEN_FIELDS = ("requests", "concurrency", "ok", "errors", "seconds", "requests_per_s", "p50_ms", "p99_ms",
                       "max_ms", "connections", "distinct_tokens", "other_origin_refused", "server_cpu_ms_per_request",
                       "server_cpu_pct", "machine_cpu_pct")  # fmt: skip
WIDGET_OPEN_FIELDS = ("viewers", "opened", "refused", "refused_reasons", "warm_up", "timed", "seconds",
                      "connects_per_s", "connect_p50_ms", "connect_p99_ms", "server_rss_mb_before",
                      "server_rss_mb_after", "rss_kb_per_viewer", "widget_leases", "stream_leases",
                      "server_cpu_ms_per_connect", "server_cpu_pct", "machine_cpu_pct")  # fmt: skip
WIDGET_STREAMING_FIELDS = ("quotes_per_viewer_per_s", "offered_ticks_per_s", "expected_quotes_per_s",
                           "delivered_quotes_per_s", "delivered_ratio", "frames_per_s", "p50_ms", "p99_ms", "max_ms",
                           "server_cpu_pct", "rss_mb", "sustained")  # fmt: skip
WIDGET_SUMMARY = {  # summary field: (section, field); and `viewers`, the planned count
    "opened": ("open", "opened"), "connects_per_s": ("open", "connects_per_s"),
    "connect_p99_ms": ("open", "connect_p99_ms"), "rss_kb_per_viewer": ("open", "rss_kb_per_viewer"),
    "server_cpu_ms_per_connect": ("open", "server_cpu_ms_per_connect"),
    "quotes_per_viewer_per_s": ("streaming", "quotes_per_viewer_per_s"),
    "delivered_ratio": ("streaming", "delivered_ratio"), "p50_ms": ("streaming", "p50_ms"),
    "p99_ms": ("streaming", "p99_ms"), "sustained": ("streaming", "sustained"),
    "token_requests_per_s": ("token", "requests_per_s"), "token_p50_ms": ("token", "p50_ms"),
    "token_p99_ms": ("token", "p99_ms"), "token_ok": ("token", "ok"), "token_errors": ("token", "errors"),
    "token_server_cpu_ms_per_request": ("token", "server_cpu_ms_per_request"),
}  # fmt: skip


def widget_empty() -> dict[str, Any]:
    """The `widget` object before (or without) a widget scenario: every field there, null."""
    return {"viewers": None, "symbols": [], "token": dict.fromkeys(WIDGET_TOKEN_FIELDS),
            "open": dict.fromkeys(WIDGET_OPEN_FIELDS), "steps": [],
            "streaming": dict.fromkeys(WIDGET_STREAMING_FIELDS)}  # fmt: skip


COLUMNS = [  # (title, field, width, decimals: None for integers and text)
    ("system", "system", 10, None),
    ("conns", "connections", 5, None),
    ("offered/s", "offered_ticks_per_s", 9, 1),
    ("expected/s", "expected_ticks_per_s", 10, 0),
    ("delivered/s", "delivered_ticks_per_s", 11, 0),
    ("deliv%", "delivered_pct", 6, 1),
    ("frames/s", "frames_per_s", 9, 0),
    ("p50ms", "p50_ms", 5, None),
    ("p99ms", "p99_ms", 5, None),
    ("srvCPU%", "server_cpu_pct", 7, 0),
    ("cliCPU%", "client_cpu_pct", 7, 0),
    ("redis%", "redis_cpu_pct", 6, 0),
    ("allCPU%", "machine_cpu_pct", 7, 0),
    ("other%", "other_cpu_pct", 6, 0),
    ("RSS MB", "rss_mb", 6, 0),
]


def sustained(row: Row) -> bool:
    """At least 99 % of the expected quotes delivered, with p99 latency within 100 ms."""
    return bool(
        row["expected_ticks_per_s"]
        and row["delivered_ticks_per_s"] >= SUSTAINED_SHARE * row["expected_ticks_per_s"]
        and row["p99_ms"] is not None
        and row["p99_ms"] <= SUSTAINED_P99_MS
    )


def failed(row: Row) -> bool:
    """Clearly past the limit: under 99 % delivered, or p99 over a second."""
    return bool(
        not row["expected_ticks_per_s"]
        or row["delivered_ticks_per_s"] < SUSTAINED_SHARE * row["expected_ticks_per_s"]
        or row["p99_ms"] is None
        or row["p99_ms"] > FAILED_P99_MS
    )


def _cell(value: Any, width: int, decimals: int | None) -> str:
    text = "-" if value is None else f"{value:.{decimals}f}" if decimals is not None else str(value)
    return text.ljust(width) if isinstance(value, str) else text.rjust(width)


def table_header() -> str:
    titles = (title.ljust(width) if name == "system" else title.rjust(width) for title, name, width, _ in COLUMNS)
    return "  ".join(titles) + "  flags"


def table_line(row: Row) -> str:
    flags = [name for name, on in (("sustained", sustained(row)), ("client-bound", row["client_saturated"]),
                                   ("noisy", row.get("noisy"))) if on]  # fmt: skip
    if row.get("closed"):
        flags.append(f"closed {row['closed']}")
    cells = (_cell(row.get(name), width, decimals) for _, name, width, decimals in COLUMNS)
    return "  ".join(cells) + "  " + " ".join(flags)


@dataclass
class Results:
    started_at: str
    config: dict[str, Any]
    runs: list[Row] = field(default_factory=list)
    opens: list[Row] = field(default_factory=list)  # per system × connections: connects/s, idle memory
    slow_reader: Row | None = None
    widget: dict[str, Any] = field(default_factory=widget_empty)  # bench.widget fills it in
    pace: dict[str, Any] | None = None  # bench.runner.pace_saving: without and with a viewer-chosen pace
    idle: dict[str, Any] | None = None  # bench.idle: many connections, a quote every few seconds each
    notes: list[str] = field(default_factory=list)
    completed: bool = False

    def note(self, text: str) -> None:
        print(f"  ! {text}")
        self.notes.append(text)

    def best(self, system: str, connections: int, passed: Callable[[Row], bool]) -> float | None:
        """Delivered quotes/s at the highest offered rate whose step `passed`."""
        rows = [r for r in self.runs if r["system"] == system and r["connections"] == connections and passed(r)]
        return max(rows, key=lambda r: r["offered_ticks_per_s"])["delivered_ticks_per_s"] if rows else None

    def summary(self, systems: list[str], connections: list[int]) -> dict[str, Any]:
        primary = str(connections[0])
        by_system: dict[str, Any] = {}
        for system in systems:
            by_connections = {str(n): self.best(system, n, sustained) for n in connections}
            # The same without the latency bound: throughput alone (>= 99 % delivered, p99 <= 1 s).
            delivered = {str(n): self.best(system, n, lambda r: not failed(r)) for n in connections}
            for n, value in by_connections.items():
                if value is None:
                    self.note(f"{system} at {n} connections: no step was sustained (>= 99 % delivered and "
                              f"p99 <= {SUSTAINED_P99_MS} ms); without the latency bound: {delivered[n]}")  # fmt: skip
            by_system[system] = {"max_sustainable_ticks_per_s": by_connections[primary],
                                 "by_connections": by_connections,
                                 "max_delivered_ticks_per_s": delivered[primary],
                                 "delivered_by_connections": delivered}  # fmt: skip
        noisy = [r for r in self.runs if r.get("noisy")]
        if noisy:
            self.note(f"{len(noisy)} of {len(self.runs)} steps ran beside other load (other processes over "
                      f"10 % of a core; at most {max(r['other_cpu_pct'] for r in noisy):.0f} %): their figures are "
                      "the machine's, not the product's")  # fmt: skip
        opened = next((o for o in self.opens if o["system"] == "tickerdeck" and str(o["connections"]) == primary), {})
        slow = self.slow_reader or dict.fromkeys(SLOW_READER_FIELDS)
        return {
            "primary_connections": int(primary),
            "systems": by_system,
            "ratio_vs_naive": self._ratio(by_system, "naive", "max_sustainable_ticks_per_s"),
            "ratio_vs_raw": self._ratio(by_system, "raw", "max_sustainable_ticks_per_s"),
            "delivered_ratio_vs_naive": self._ratio(by_system, "naive", "max_delivered_ticks_per_s"),
            "delivered_ratio_vs_raw": self._ratio(by_system, "raw", "max_delivered_ticks_per_s"),
            "connects_per_s": opened.get("connects_per_s"),
            "idle_kb_per_connection": opened.get("idle_kb_per_connection"),
            "slow_reader": slow,
            "widget": {
                "viewers": self.widget["viewers"],
                **{name: self.widget[section][key] for name, (section, key) in WIDGET_SUMMARY.items()},
            },
            "pace": self.pace["saving"] if self.pace else None,
            "idle": self.idle,
            "noisy_steps": len(noisy),
            "notes": self.notes,
        }

    def _ratio(self, by_system: dict[str, Any], other: str, figure: str) -> float | None:
        mine = by_system.get("tickerdeck", {}).get(figure)
        theirs = by_system.get(other, {}).get(figure)
        if mine is None or not theirs:
            self.note(f"{figure} tickerdeck/{other}: not measurable (tickerdeck {mine}, {other} {theirs})")
            return None
        return round(mine / theirs, 2)

    def document(self, systems: list[str], connections: list[int]) -> dict[str, Any]:
        machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                   "load_average": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
        summary = self.summary(systems, connections)
        return {"started_at": self.started_at, "completed": self.completed, "machine": machine,
                "config": self.config, "runs": self.runs, "opens": self.opens, "widget": self.widget,
                "pace": self.pace, "idle": self.idle, "summary": summary}  # fmt: skip


def write(document: dict[str, Any], path: Path) -> None:
    """Write through a temporary file, so a reader never sees half a document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    partial.replace(path)


def print_summary(document: dict[str, Any]) -> None:
    summary = document["summary"]
    print(f"\nSummary (max sustainable = delivered quotes/s at the highest rate with >= 99 % delivered and "
          f"p99 <= {SUSTAINED_P99_MS} ms; primary: {summary['primary_connections']} connections)")  # fmt: skip
    for system, figures in summary["systems"].items():
        counts = ", ".join(f"{n}: {_number(v)}" for n, v in figures["by_connections"].items())
        delivered = ", ".join(f"{n}: {_number(v)}" for n, v in figures["delivered_by_connections"].items())
        print(f"  {system:<10} sustained {counts}   (throughput alone, p99 <= 1 s: {delivered})")
    print(
        f"  tickerdeck / naive: {summary['ratio_vs_naive']} (throughput alone {summary['delivered_ratio_vs_naive']})"
        f"   tickerdeck / raw: {summary['ratio_vs_raw']} (throughput alone {summary['delivered_ratio_vs_raw']})"
    )
    print(f"  tickerdeck connects/s: {_number(summary['connects_per_s'])}   "
          f"idle KB per connection: {_number(summary['idle_kb_per_connection'])}")  # fmt: skip
    for opened in document["opens"]:
        print(f"    {opened['system']:<10} {opened['connections']:>5} connections: "
              f"{_number(opened['connects_per_s'])} connects/s, "
              f"each p99 {_number(opened['connect_p99_ms'])} ms, {_number(opened['idle_kb_per_connection'])} KB "
              f"each idle{' (noisy)' if opened['noisy'] else ''}")  # fmt: skip
    slow = summary["slow_reader"]
    print("  slow readers: " + ", ".join(f"{name} {_number(slow[name])}" for name in SLOW_READER_FIELDS))
    widget = summary["widget"]
    if widget["viewers"] is not None:
        print(f"  widget, {widget['opened']}/{widget['viewers']} viewers of one widget: "
              f"{_number(widget['connects_per_s'])} connects/s (p99 {_number(widget['connect_p99_ms'])} ms each, "
              f"{_number(widget['server_cpu_ms_per_connect'])} ms of server CPU), "
              f"{_number(widget['rss_kb_per_viewer'])} KB per viewer; at {_number(widget['quotes_per_viewer_per_s'])} "
              f"quotes/s per viewer: delivered {_number(widget['delivered_ratio'])}, p50 {_number(widget['p50_ms'])} "
              f"ms, p99 {_number(widget['p99_ms'])} ms")  # fmt: skip
        print(f"  widget token endpoint: {_number(widget['token_requests_per_s'])} requests/s, "
              f"p50 {_number(widget['token_p50_ms'])} ms, p99 {_number(widget['token_p99_ms'])} ms, "
              f"{widget['token_ok']} ok, errors {widget['token_errors']}, "
              f"{_number(widget['token_server_cpu_ms_per_request'])} ms of server CPU each")  # fmt: skip


def print_pace(pace: dict[str, Any] | None) -> None:
    if pace is None:
        return
    print(f"  pace, {pace['connections']} connections, {pace['symbols']} symbols, max_per_second "
          f"{pace['max_per_second']}:")  # fmt: skip
    for saving in pace["saving"]:
        pairs = ("server_cpu_pct", "web_cpu_pct", "frames_per_s", "p99_ms")
        server, web, frames, p99 = (" -> ".join(map(_number, saving[name])) for name in pairs)
        print(f"    {_number(saving['ticks_per_symbol_per_s'])} ticks/s per symbol: server CPU {server} % (saved "
              f"{_number(saving['server_cpu_saved_pct'])} %), web process {web} % (saved "
              f"{_number(saving['web_cpu_saved_pct'])} %), frames/s {frames}, p99 {p99} ms")  # fmt: skip


def _number(value: Any) -> str:
    if value is None:
        return "null"
    return f"{value:,.1f}" if isinstance(value, float) else str(value)
