"""What the soak measured and judged: memory samples, the lease store, the logs, the checks, the tables."""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench import environment
from bench.processes import Child
from bench.systems import Context, Running
from bench.tenants import Organisations

FLAT_PCT, FLAT_FLOOR_MB = 10.0, 5.0
FLAT_RULE = (f"end - middle <= max({FLAT_PCT:.0f} % of middle, {FLAT_FLOOR_MB:.0f} MB) "
             f"(start is after the ramp; start to middle is warm-up)")  # fmt: skip
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback")
LEASE_WAIT_SECONDS = 15.0
REDIS_KEYS = "redis keys (this run)"
SHARED_REDIS = "redis-server"


@dataclass
class Memory:
    """RSS of every process of the run (the web server's workers each apart), and the Redis memory of the
    run's own keys, sampled now and then; `start`, `middle` and `end` are named samples."""

    running: Running
    client: Child
    context: Context
    samples: list[dict[str, Any]] = field(default_factory=list)
    redis_keys_after: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self.redis = environment.redis_process(self.context.redis_url)

    def processes(self) -> dict[str, psutil.Process]:
        named: dict[str, psutil.Process] = {}
        for child in [*self.running.children, self.client]:
            name = {"tickerdeck-server": "web", "tickerdeck-feed": "feed"}.get(child.name, child.name)
            named[name] = child.ps
            with contextlib.suppress(psutil.Error):
                for number, worker in enumerate(child.ps.children(recursive=True), start=1):
                    named[f"{name} worker {number}"] = worker
        if self.redis is not None:
            named[SHARED_REDIS] = self.redis
        return named

    def sample(self, label: str | None) -> None:
        figures: dict[str, float | None] = {}
        for name, process in self.processes().items():
            try:
                figures[name] = round(process.memory_info().rss / 2**20, 1)
            except psutil.Error:
                figures[name] = None
        figures[REDIS_KEYS] = self.redis_keys()["mb"]
        self.samples.append({"label": label, "t": round(time.monotonic() - self.started, 1), "mb": figures})

    def redis_keys(self) -> dict[str, Any]:
        """How many keys the run has in Redis (its namespace), and their memory (MEMORY USAGE)."""
        import redis

        with redis.Redis.from_url(self.context.redis_url, socket_timeout=10) as client:
            keys = list(client.scan_iter(match=self.context.redis_prefix + "*", count=1000))
            with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.memory_usage(key)
                sizes = pipe.execute()
        return {"keys": len(keys), "mb": round(sum(size or 0 for size in sizes) / 2**20, 2)}

    def figures(self) -> dict[str, Any]:
        """Per process: start, middle, end, the growth from middle to end, its slope and the verdict."""
        named = {sample["label"]: sample["mb"] for sample in self.samples if sample["label"]}
        if not {"start", "middle", "end"} <= set(named):
            return {}
        result: dict[str, Any] = {}
        middle_t = next(s["t"] for s in self.samples if s["label"] == "middle")
        for name in named["start"]:
            start, middle, end = (named[label].get(name) for label in ("start", "middle", "end"))
            if start is None or middle is None or end is None:
                result[name] = {"start": start, "middle": middle, "end": end, "judged": False, "flat": None}
                continue
            judged = name != SHARED_REDIS  # shared with every other user of that server: its keys are judged
            growth = round(end - middle, 1)
            flat = growth <= max(FLAT_PCT / 100 * middle, FLAT_FLOOR_MB)
            points = [(s["t"], s["mb"][name]) for s in self.samples if s["t"] >= middle_t and s["mb"].get(name)]
            result[name] = {"start": start, "middle": middle, "end": end, "growth_middle_to_end": growth,
                            "slope_mb_per_10_min": slope(points), "judged": judged,
                            "flat": flat if judged else None}  # fmt: skip
        return result


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB), in MB per 10 minutes."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_t, mean_y = sum(t for t, _ in points) / n, sum(y for _, y in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return round(600 * sum((t - mean_t) * (y - mean_y) for t, y in points) / spread, 2)


def leases_now(created: Organisations) -> tuple[int, int]:
    """(stream, widget) leases of every organisation of the run in the lease store now."""
    from streaming.state import LeaseKind, lease_ids_sync
    from tenants.models import Organisation

    schemas = list(Organisation.objects.filter(pk__in=created.organisation_ids).values_list("schema_name", flat=True))
    return (sum(len(lease_ids_sync(LeaseKind.STREAM, schema)) for schema in schemas),
            sum(len(lease_ids_sync(LeaseKind.WIDGET, schema)) for schema in schemas))  # fmt: skip


@dataclass
class Soak:
    """The run's figures as they come, and the checks made of them."""

    started_at: str
    config: dict[str, Any]
    completed: bool = False
    seconds: float = 0.0
    limits: dict[str, str] = field(default_factory=dict)
    limit_amounts: tuple[int, int] = (0, 0)  # connects, token requests per window
    ramp: dict[str, Any] = field(default_factory=dict)
    final: dict[str, Any] = field(default_factory=dict)
    plan_changes: int = 0
    watchlist_edits: int = 0
    abuse: dict[str, Any] = field(default_factory=dict)
    leases_open: dict[str, Any] = field(default_factory=dict)
    leases_closed: dict[str, Any] = field(default_factory=dict)
    closed_all: int = 0
    children: list[Child] = field(default_factory=list)
    memory: Memory | None = None
    log_errors: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    load_average_start: list[float] = field(default_factory=lambda: list(os.getloadavg()))

    def note(self, text: str) -> None:
        print(f"  NOTE: {text}", flush=True)
        self.notes.append(text)

    def progress(self, elapsed: float, stats: dict[str, Any], memory: Memory) -> None:
        rss = ", ".join(f"{name} {mb}" for name, mb in memory.samples[-1]["mb"].items())
        print(f"  {elapsed:5.0f} s  open {stats['open']}  opened {stats.get('opened', 0)}  closed clean "
              f"{stats.get('closed_clean', 0)} reset {stats.get('closed_reset', 0)} dropped "
              f"{stats.get('closed_dropped', 0)}  server closed {stats['server_closed']}  refused "
              f"{sum(stats['refused'].values())}  quiet {stats['starving_now']}  plans {self.plan_changes}  "
              f"watchlist edits {self.watchlist_edits}  RSS MB {rss}", flush=True)  # fmt: skip

    def leases_wait(self, created: Organisations, expected: tuple[int, int]) -> dict[str, Any]:
        """Poll the lease store until it holds `expected` (streams, widgets), for LEASE_WAIT_SECONDS at most."""
        started = time.monotonic()
        while True:
            found = leases_now(created)
            waited = time.monotonic() - started
            if found == expected or waited >= LEASE_WAIT_SECONDS:
                return {"expected": list(expected), "leases": list(found), "seconds": round(waited, 1),
                        "equal": found == expected}  # fmt: skip
            time.sleep(0.5)

    def logs_check(self) -> None:
        """Every ERROR, CRITICAL or traceback line each process logged."""
        for child in self.children:
            lines = child.log_path.read_text(errors="replace").splitlines()
            self.log_errors[child.name] = [line for line in lines if ERROR_LINE.search(line)]

    def checks(self, memory: dict[str, Any]) -> list[dict[str, Any]]:
        final, ramp, abuse = self.final, self.ramp, self.abuse
        messages = final.get("messages", {})
        tokens = abuse.get("tokens", {})
        abuser_4429 = sum(n for reason, n in abuse.get("connects", {}).items() if reason.startswith("4429 "))
        checks = [
            ("the run completed", self.completed, "; ".join(self.notes)),
            ("every connection of the ramp opened", bool(ramp) and not ramp.get("refused"), ramp.get("refused")),
            ("no connect of the population refused (any code, 4429 included)", bool(final) and not final.get("refused"),
             final.get("refused")),
            ("no open connection closed by the server", bool(final) and not final.get("server_closed"),
             final.get("server_closed")),
            ("every open connection got a quote at least every --quiet-seconds", final.get("starving_max") == 0,
             f"most at once without: {final.get('starving_max')}"),
            ("plan changes reached open connections (limits messages)", self.plan_changes > 0
             and messages.get("limits", 0) > 0, f"{self.plan_changes} changes, {messages.get('limits', 0)} messages"),
            ("watchlist edits reached open connections (subscribed/unsubscribed)", self.watchlist_edits > 0
             and messages.get("unsubscribed", 0) > 0 and messages.get("subscribed", 0) > 0,
             f"{self.watchlist_edits} edits, {messages.get('subscribed', 0)} subscribed, "
             f"{messages.get('unsubscribed', 0)} unsubscribed"),
            ("memory flat (" + FLAT_RULE + ")", bool(memory) and all(m["flat"] for m in memory.values() if m["judged"]),
             {name: m.get("growth_middle_to_end") for name, m in memory.items() if m["judged"]}),
            ("leases equal open connections at the end", self.leases_open.get("equal") is True, self.leases_open),
            ("no lease left once every connection closed", self.leases_closed.get("equal") is True, self.leases_closed),
            ("no ERROR, CRITICAL or traceback in any log", bool(self.log_errors)
             and not any(self.log_errors.values()), {name: len(lines) for name, lines in self.log_errors.items()}),
            ("the abuser's connects refused 4429 past the limit", abuser_4429 > 0, abuse.get("connects")),
            ("the abuser's token requests refused 429 past the limit", not abuse.get("token_requests")
             or tokens.get("http 429", 0) > 0, tokens),
            ("no token request of the population refused", not any(k != "200" for k in final.get("tokens", {})),
             final.get("tokens")),
        ]  # fmt: skip
        return [{"check": name, "passed": bool(passed), "detail": detail} for name, passed, detail in checks]

    def document(self) -> dict[str, Any]:
        memory = self.memory.figures() if self.memory is not None else {}
        checks = self.checks(memory)
        abuser_refused = sum(n for reason, n in self.abuse.get("connects", {}).items() if reason.startswith("4429 "))
        final = self.final
        return {
            "started_at": self.started_at, "completed": self.completed, "config": self.config,
            "machine": {"cpus": os.cpu_count(), "load_average_start": self.load_average_start,
                        "load_average_end": list(os.getloadavg())},
            "seconds": self.seconds, "limits": self.limits, "flat_rule": FLAT_RULE, "memory": memory,
            "memory_samples": self.memory.samples if self.memory is not None else [],
            "redis_keys_after_close": self.memory.redis_keys_after if self.memory is not None else {},
            "ramp": self.ramp, "final": final,
            "connections": {
                "held": self.config["connections"], "open_at_end": final.get("open"),
                "opened": final.get("opened"), "closed_clean": final.get("closed_clean", 0),
                "closed_abrupt_reset": final.get("closed_reset", 0),
                "closed_abrupt_no_close_frame": final.get("closed_dropped", 0),
                "closed_by_server": final.get("server_closed"), "refused": final.get("refused"),
                "quotes": final.get("quotes"), "quote_frames": final.get("quote_frames"),
                "messages": final.get("messages"), "viewer_tokens": final.get("tokens"),
            },
            "plan_changes": self.plan_changes, "watchlist_edits": self.watchlist_edits,
            "leases_at_end": self.leases_open, "leases_after_close": self.leases_closed,
            "log_errors": {name: len(lines) for name, lines in self.log_errors.items()},
            "log_error_lines": {name: lines[:20] for name, lines in self.log_errors.items() if lines},
            "abuse": {**self.abuse, "connects_refused_4429": abuser_refused,
                      "tokens_refused_429": self.abuse.get("tokens", {}).get("http 429", 0)},
            "checks": checks, "passed": all(check["passed"] for check in checks), "notes": self.notes,
        }  # fmt: skip


def print_tables(document: dict[str, Any]) -> None:
    memory = document["memory"]
    print(f"\nMemory (RSS MB; flat: {document['flat_rule']})")
    print(f"  {'process':26s} {'start':>8s} {'middle':>8s} {'end':>8s} {'mid->end':>9s} {'MB/10min':>9s}  flat")
    for name, m in memory.items():
        verdict = "-" if not m["judged"] else ("yes" if m["flat"] else "NO")
        print(f"  {name:26s} {_n(m['start']):>8s} {_n(m['middle']):>8s} {_n(m['end']):>8s} "
              f"{_n(m.get('growth_middle_to_end')):>9s} {_n(m.get('slope_mb_per_10_min')):>9s}  {verdict}")  # fmt: skip
    c, a = document["connections"], document["abuse"]
    print(f"\nConnections: {c['held']} held for {document['seconds']} s; opened {c['opened']}, closed clean "
          f"{c['closed_clean']}, abruptly {c['closed_abrupt_reset']} (reset) + {c['closed_abrupt_no_close_frame']} "
          f"(no close frame); by the server {c['closed_by_server']}; refused {c['refused']}; quotes {c['quotes']} "
          f"in {c['quote_frames']} frames; messages {c['messages']}")  # fmt: skip
    print(f"Plan changes {document['plan_changes']}, watchlist edits {document['watchlist_edits']}; leases at the end "
          f"{document['leases_at_end']}, after closing {document['leases_after_close']}")  # fmt: skip
    print(f"Log errors {document['log_errors']}; abuse from {a.get('address')}: connects {a.get('connects')}, "
          f"tokens {a.get('tokens')}")  # fmt: skip
    print("\nChecks:")
    for check in document["checks"]:
        print(f"  {'ok  ' if check['passed'] else 'FAIL'} {check['check']}: {check['detail']}")
    print(f"\n{'PASSED' if document['passed'] else 'FAILED'}")


def _n(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)
