"""`python -m bench.alert_scale [--quick]`: what 100,000 price alerts over 1,000 organisations cost the feed.

`make bench-alerts`. In the bench's own database (as `make bench`), on tickerdeck as deployed
(`config.server` + `manage.py run_feed`, the `relay` provider reading the bench publisher):

1. Set-up: `--organisations` organisations on a private realtime plan allowing `--alerts-per-organisation`
   alerts (bench.tenants), no alert yet. The system starts; its alert engine loads them all (empty).
2. Streams: the load client opens `--connections` websockets over the first `--stream-organisations`
   (as `make bench` does), so the feed quotes the publisher's symbols; the publisher ticks `--rate`
   ticks/s over `--symbols` symbols.
3. Before: `--windows` windows of `--seconds`: the feed process's CPU seconds over each window ÷ the
   ticks the publisher published in it = feed CPU per quote (every tick is one quote the feed publishes).
4. Alerts: per organisation schema, `--alerts-per-organisation` alerts bulk-inserted, levels set
   `--distance` % away from the symbol's last price in the feed's cache (or day-change points away from
   its change %), symbols drawn by popularity (Zipf), cooldowns of 5 to 60 minutes, in-app notices.
   Each is inserted as if it had just fired (in its cooldown). Then `alerts_changed_mark` for every
   schema: the running engine reloads them, one query per organisation (alerts.loading), as at its
   start. Load time = first mark → the last-marked organisation's one alert on a symbol of its own
   is in the watch registry (the index is in place).
5. Quiet: the same windows, every alert evaluated on every published batch, none fires (cooldowns):
   quiet minus before is what evaluating the alerts costs the feed.
6. After: the same alerts under new ids, never fired (as if re-created), reloaded the same way (timed:
   a reload of every organisation with the index full), then the same windows: crossings fire and the
   feed process writes them to the database (firings counted per window by their quote's time, once
   the engine's queue has drained). After minus quiet is what writing the firings costs it.
7. Apart, with the system stopped: `alerts_load` of every organisation timed in this process, and the
   index's evaluation alone on the same alerts and a random walk like the publisher's (µs per quote).

Writes bench/results/alerts-latest.json and prints a table. Every process is stopped at the end
(also on Ctrl-C and SIGTERM), and the run's organisations (their schemas, with the alerts) and Redis
keys are removed.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import psutil
import redis

from bench import config as bench_config
from bench import report
from bench.processes import ROOT
from bench.publisher import Market
from bench.report import Results
from bench.runner import Harness, Opened, Window, max_streams_needed, open_streams, rss_mb
from bench.session import context_start, harness_start, run_stopping_everything
from bench.systems import Running
from bench.systems.tickerdeck import Tickerdeck
from bench.tenants import Organisations, directory_symbols, organisations_create, organisations_remove
from bench.workload import streams_plan

DEFAULT_OUTPUT = ROOT / "bench" / "results" / "alerts-latest.json"
PRESETS: dict[str, dict[str, Any]] = {
    # ~25 minutes on a shared 2-core machine, most of it signing up the 1,000 organisations (0.5-2 s each)
    # and dropping them after.
    "full": {"organisations": 1000, "connections": 1000, "stream_organisations": 50, "windows": 4,
             "seconds": 10.0, "warmup": 5.0, "distance": (1.0, 20.0), "replay_quotes": 200_000},
    # Well under a minute: 20 organisations x 100 alerts, one short window each side, levels nearer
    # the prices so that some fire within it.
    "quick": {"organisations": 20, "connections": 100, "stream_organisations": 10, "windows": 1,
              "seconds": 2.0, "warmup": 1.0, "distance": (0.1, 2.0), "replay_quotes": 20_000},
}  # fmt: skip
KINDS = ("price_above", "price_below", "change_pct_above", "change_pct_below")  # AlertCondition's values
KIND_WEIGHTS = (0.4, 0.4, 0.1, 0.1)
COOLDOWNS_SECONDS = (300, 900, 3600)  # longer than a run: an alert fires at most once in it
LOAD_TIMEOUT_SECONDS = 600.0
ID_SHIFT = 10_000_000  # above any id of the run: the released alerts' ids are all new
FIRE_POLL_SECONDS = 2.0  # after the last window, the firings are counted until no new one comes
FIRE_DRAIN_MAX_SECONDS = 300.0
DRAIN_SECONDS = 1.0


@dataclass(frozen=True)
class AlertConfig:
    quick: bool
    organisations: int
    alerts_per_organisation: int
    connections: int
    stream_organisations: int
    symbols: int
    rate: float
    windows: int
    seconds: float
    warmup: float
    distance: tuple[float, float]  # % of the price (day-change points for change alerts), min and max
    replay_quotes: int
    seed: int
    output: Path
    database_url: str | None
    redis_url: str | None
    skip_bootstrap: bool

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "output": str(self.output), "distance": list(self.distance)}

    def streams(self) -> bench_config.Config:
        """The streaming bench's config for the shared helpers (open_streams, Window): streams and grace."""
        return bench_config.parse([
            "--systems", "tickerdeck", "--connections", str(self.connections),
            "--organisations", str(self.stream_organisations), "--symbols", str(self.symbols),
            "--rates", str(self.rate), "--warmup", str(min(self.warmup, 1.0)), "--seconds", str(self.seconds),
            "--seed", str(self.seed), "--widget-viewers", "0", "--output", str(self.output),
        ])  # fmt: skip


def _distance(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    try:
        pair = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"MIN,MAX in percent, for example 1,20 (got {text!r})") from None
    if not 0 < pair[0] <= pair[1] < 100:
        raise argparse.ArgumentTypeError(f"0 < MIN <= MAX < 100 (got {text!r})")
    return pair


def parse(argv: Sequence[str] | None = None) -> AlertConfig:
    parser = argparse.ArgumentParser(prog="python -m bench.alert_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 organisations, short windows (< 1 minute)")
    parser.add_argument("--organisations", type=int, help="organisations with alerts (full 1000, quick 20)")
    parser.add_argument("--alerts-per-organisation", type=int, default=100)
    parser.add_argument("--connections", type=int, help="websockets that make the feed quote (full 1000, quick 100)")
    parser.add_argument("--stream-organisations", type=int, help="the first N organisations hold the streams")
    parser.add_argument("--symbols", type=int, default=500, help="the first N symbols of the directory tick")
    parser.add_argument("--rate", type=float, default=4000.0, help="ticks/s the publisher offers (default 4000)")
    parser.add_argument("--windows", type=int, help="measuring windows before and after (full 4, quick 1)")
    parser.add_argument("--seconds", type=float, help="each window (full 10, quick 2)")
    parser.add_argument("--warmup", type=float, help="seconds at the rate before the first window of each side")
    parser.add_argument("--distance", type=_distance,
                        help="alert levels MIN,MAX %% from the last price (full 1,20; quick 0.1,2)")  # fmt: skip
    parser.add_argument("--replay-quotes", type=int, help="quotes through the index alone, after the run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--database-url", help="use this database as it is (default: tickerdeck_bench)")
    parser.add_argument("--redis-url")
    parser.add_argument("--skip-bootstrap", action="store_true", help="the database is already set up")
    args = vars(parser.parse_args(argv))
    for name, value in PRESETS["quick" if args["quick"] else "full"].items():
        if args[name] is None:
            args[name] = value
    if min(args["organisations"], args["alerts_per_organisation"], args["connections"], args["windows"]) < 1:
        parser.error("give at least one organisation, alert, connection and window")
    if not 1 <= args["stream_organisations"] <= args["organisations"] or args["rate"] <= 0 or args["seconds"] <= 0:
        parser.error("the streams' organisations are among the alerts' ones; rate and seconds are positive")
    return AlertConfig(**args)


# -- set-up ------------------------------------------------------------------------------------------
def organisations_with_alert_room(created: Organisations, c: AlertConfig, run_id: str) -> float:
    """The organisations (bench.tenants), their plan then allowing the alerts; returns the seconds taken."""
    from billing.models import Plan

    started = time.monotonic()
    organisations_create(created, count=c.organisations, run_id=run_id,
                         max_streams=max_streams_needed(c.streams()))  # fmt: skip
    Plan.objects.filter(slug=f"bench-{run_id}").update(max_alerts=c.alerts_per_organisation)
    return time.monotonic() - started


def schemas_of(created: Organisations) -> list[str]:
    from tenants.models import Organisation

    return sorted(Organisation.objects.filter(pk__in=created.organisation_ids).values_list("schema_name", flat=True))


@dataclass(frozen=True)
class LastQuote:
    price: float
    change_pct: float


def last_quotes(client: redis.Redis[bytes], prefix: str) -> dict[str, LastQuote]:
    """The feed's last-quote cache (realtime): where the alerts' levels are set from."""
    raw = client.hgetall(f"{prefix}last:0")
    quotes = {}
    for symbol, encoded in raw.items():
        quote = orjson.loads(encoded)
        quotes[symbol.decode()] = LastQuote(float(quote["price"]), float(quote["change_pct"]))
    return quotes


def alert_rows(rng: random.Random, prices: dict[str, LastQuote], popular: list[str], count: int,
               distance: tuple[float, float]) -> list[dict[str, Any]]:  # fmt: skip
    """`count` alerts' fields: symbols by Zipf popularity, levels `distance` away from the last value, each
    fired just now (in its cooldown)."""
    fired_ms = time.time_ns() // 1_000_000
    weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(popular))))
    rows = []
    for symbol, kind in zip(rng.choices(popular, cum_weights=weights, k=count),
                            rng.choices(KINDS, weights=KIND_WEIGHTS, k=count), strict=True):  # fmt: skip
        away = rng.uniform(*distance)
        last = prices[symbol]
        if kind.startswith("price"):
            level = last.price * (1 + away / 100 if kind == "price_above" else 1 - away / 100)
        else:
            level = last.change_pct + (away if kind == "change_pct_above" else -away)
            level = level if abs(level) >= 0.01 else 0.01  # a day-change level is never 0
        rows.append({"name": f"{symbol} {kind} {away:.1f}", "symbol": symbol, "condition": kind,
                     "level": Decimal(f"{level:.4f}"), "cooldown_seconds": rng.choice(COOLDOWNS_SECONDS),
                     "channels": ["in_app"], "last_fired_ts": fired_ms})  # fmt: skip
    return rows


def alerts_insert(schemas: list[str], rows: Callable[[str], list[dict[str, Any]]]) -> int:
    """Bulk-insert each schema's alerts (no change mark yet); returns how many."""
    from django_tenants.utils import schema_context

    from alerts.models import Alert

    total = 0
    for schema in schemas:
        with schema_context(schema):
            total += len(Alert.objects.bulk_create([Alert(**fields) for fields in rows(schema)]))
    return total


def alerts_release(schemas: list[str], sentinel: str) -> None:
    """The alerts as if re-created: new ids, never fired (the engine's own cooldowns are by id); the sentinel
    moves to `sentinel`."""
    from django.db.models import F
    from django_tenants.utils import schema_context

    from alerts.models import Alert

    for schema in schemas:
        with schema_context(schema):
            Alert.objects.update(id=F("id") + ID_SHIFT, last_fired_ts=None)
    with schema_context(schemas[-1]):
        Alert.objects.filter(name="sentinel").update(symbol=sentinel)


# -- measuring ---------------------------------------------------------------------------------------
class FeedWindow(Window):
    """The streaming bench's window, with the feed process's and the publisher's CPU apart."""

    def __init__(self, harness: Harness, running: Running) -> None:
        super().__init__(harness, running)
        self._sources["feed"] = [feed_process(running)]
        self._sources["publisher"] = [harness.publisher.ps]


def feed_process(running: Running) -> psutil.Process:
    return running.children[1].ps  # Tickerdeck starts the server, then the feed


def feed_published() -> int | None:
    """The feed leader's `published` counter (quotes x watching organisations), from its status."""
    from streaming.state import feed_status_sync

    status = feed_status_sync()
    return int(status["published"]) if status else None


def window_row(
    side: str, result: dict[str, Any], published: tuple[int | None, int | None], wall: float
) -> dict[str, Any]:
    offered, window = result["offered"], result["window"]
    delivered = result["all"]["quotes"] / window
    feed_pct = result["feed_cpu_pct"]
    bench_pct = result["server_cpu_pct"] + result["cpu_pct"] + result["publisher_cpu_pct"] + result["redis_cpu_pct"]
    first, last = published
    return {
        "side": side, "start_ms": result["start_ms"], "end_ms": result["end_ms"],
        "offered_ticks_per_s": round(offered, 1), "expected_quotes_per_s": round(result["expected"], 1),
        "delivered_pct": round(100 * delivered / result["expected"], 2) if result["expected"] else None,
        "p50_ms": result["all"]["p50_ms"], "p99_ms": result["all"]["p99_ms"],
        "feed_cpu_pct": round(feed_pct, 1),
        "feed_cpu_us_per_quote": round(1e4 * feed_pct / offered, 2) if offered else None,
        "feed_deliveries_per_s": round((last - first) / wall, 1) if first is not None and last is not None else None,
        "web_cpu_pct": round(result["server_cpu_pct"] - feed_pct, 1), "client_cpu_pct": round(result["cpu_pct"], 1),
        "publisher_cpu_pct": round(result["publisher_cpu_pct"], 1), "redis_cpu_pct": round(result["redis_cpu_pct"], 1),
        "machine_cpu_pct": round(result["machine_cpu_pct"], 1),
        "others_cpu_pct": round(max(0.0, result["machine_cpu_pct"] - bench_pct), 1),
        "feed_rss_mb": round(result["feed_rss_mb"], 1), "fired": None, "written": None,
    }  # fmt: skip


def measure_side(h: Harness, running: Running, side: str, c: AlertConfig) -> list[dict[str, Any]]:
    """`windows` windows at the rate; each row carries the feed's CPU per quote."""
    window = FeedWindow(h, running)
    rows = []
    for _ in range(c.windows):
        first, started = feed_published(), time.monotonic()
        result = window.measure(c.seconds)
        wall = time.monotonic() - started
        result["feed_rss_mb"] = rss_mb([feed_process(running)])
        rows.append(window_row(side, result, (first, feed_published()), wall))
        print("  " + row_line(rows[-1]), flush=True)
        running.check()
    return rows


def alert_watch_registered(client: redis.Redis[bytes], prefix: str, member: str) -> bool:
    return any(client.sismember(key, member) for key in client.scan_iter(match=f"{prefix}watch:alerts-*"))


def engine_reload(client: redis.Redis[bytes], prefix: str, schemas: list[str], sentinel: str) -> float:
    """Mark every schema changed (the sentinel's last); seconds until the engine registered the sentinel's watch.

    The engine reads the marked schemas' alerts in one go (or two, if a poll fell between the marks) and
    changes its index, then its watches, only after the last of them was read.
    """
    from alerts.engine import WATCH_SCHEMA
    from alerts.store import alerts_changed_mark
    from streaming.state import Watch

    member = Watch(WATCH_SCHEMA, 0, sentinel).key()
    started = time.monotonic()
    for schema in schemas:
        alerts_changed_mark(schema_name=schema)
    while not alert_watch_registered(client, prefix, member):
        if time.monotonic() - started > LOAD_TIMEOUT_SECONDS:
            raise RuntimeError(f"the alert engine did not load the alerts within {LOAD_TIMEOUT_SECONDS:.0f} s")
        time.sleep(0.02)
    return time.monotonic() - started


def fired_quote_times(schemas: list[str]) -> list[tuple[int, int]]:
    """(quote time, write time), in epoch ms, of every alert event written in these schemas (one query)."""
    from django.db import connection

    from alerts.models import AlertEvent

    quote, table = connection.ops.quote_name, connection.ops.quote_name(AlertEvent._meta.db_table)
    # Quoted names of the bench's own schemas: no value from outside.
    query = " UNION ALL ".join(
        f"SELECT quote_ts, (extract(epoch FROM fired_at) * 1000)::bigint FROM {quote(schema)}.{table}"  # noqa: S608
        for schema in schemas
    )
    with connection.cursor() as cursor:
        cursor.execute(query)
        return [(int(ts), int(written)) for ts, written in cursor.fetchall()]


# -- apart from the system ---------------------------------------------------------------------------
def load_alone(schemas: list[str]) -> tuple[float, dict[str, Any]]:
    """`alerts_load` of these organisations, as the engine runs it at start, timed in this process."""
    from alerts.loading import alerts_load, organisation_plans

    started = time.monotonic()
    plans = {schema: plan for schema, plan in organisation_plans().items() if schema in set(schemas)}
    loaded = alerts_load(plans=plans)
    return time.monotonic() - started, loaded


def replay(loaded: dict[str, Any], symbols: list[str], prices: dict[str, LastQuote], c: AlertConfig) -> dict[str, Any]:
    """The index's evaluation alone: the loaded alerts, quotes of a walk like the publisher's, batch by batch."""
    from django.conf import settings

    from alerts.index import AlertIndex
    from streaming.quotes import Quote

    window = settings.STREAM_FRAME_MS / 1000  # the feed's: the engine sees batches of this many seconds' ticks
    index = AlertIndex()
    for schema, alerts in loaded.items():
        index.schema_replace(schema, alerts.plan.delay_minutes, alerts.rules, alerts.quiet_until)
    market = Market(list(symbols), random.Random(c.seed))  # the publisher's symbols order and opening prices
    market.prices = [prices[s].price if s in prices else p for s, p in zip(market.symbols, market.prices, strict=True)]
    batch, ts, spent, fired = max(1, round(c.rate * window)), 0, 0.0, 0
    for _ in range(c.replay_quotes // batch):
        ts += round(1000 * window)
        ticks, _ = market.ticks(batch, ts)
        quotes = {tick["symbol"]: Quote(**tick) for tick in ticks}
        started = time.perf_counter()
        fired += len(index.evaluate(0, quotes))
        spent += time.perf_counter() - started
    quotes_played = batch * (c.replay_quotes // batch)
    return {"quotes": quotes_played, "batch": batch, "alerts": len(index), "books": len(index.books),
            "us_per_quote": round(1e6 * spent / quotes_played, 3) if quotes_played else None,
            "fired": fired, "suppressed": index.suppressed}  # fmt: skip


# -- the run -----------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What the run found; `document` makes the JSON of it."""

    config: AlertConfig
    started_at: str
    results: Results
    load_average_start: list[float] = field(default_factory=lambda: [round(x, 2) for x in os.getloadavg()])
    figures: dict[str, Any] = field(default_factory=dict)
    before: list[dict[str, Any]] = field(default_factory=list)
    after: list[dict[str, Any]] = field(default_factory=list)
    quiet: list[dict[str, Any]] = field(default_factory=list)
    completed: bool = False

    def document(self) -> dict[str, Any]:
        machine = {"cpus": os.cpu_count(), "load_average_start": self.load_average_start,
                   "load_average_end": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
        return {"started_at": self.started_at, "completed": self.completed, "machine": machine,
                "config": self.config.as_json(), **self.figures, "before": {"windows": self.before},
                "quiet": {"windows": self.quiet}, "after": {"windows": self.after}, "summary": summary(self),
                "notes": self.results.notes}  # fmt: skip


def _median(rows: list[dict[str, Any]], name: str) -> float | None:
    values = [row[name] for row in rows if row[name] is not None]
    return round(statistics.median(values), 2) if values else None


def _difference(high: float | None, low: float | None) -> float | None:
    return round(high - low, 2) if high is not None and low is not None else None


def summary(outcome: Outcome) -> dict[str, Any]:
    before, after = _median(outcome.before, "feed_cpu_us_per_quote"), _median(outcome.after, "feed_cpu_us_per_quote")
    quiet = _median(outcome.quiet, "feed_cpu_us_per_quote")
    f = outcome.figures
    fired = [row["fired"] for row in outcome.after if row["fired"] is not None]
    seconds = sum((row["end_ms"] - row["start_ms"]) / 1000 for row in outcome.after if row["fired"] is not None)
    fired_per_s = sum(fired) / seconds if seconds else None
    written_per_s = sum(row["written"] for row in outcome.after) / seconds if seconds else None
    firing_pct = _difference(_median(outcome.after, "feed_cpu_pct"), _median(outcome.quiet, "feed_cpu_pct"))
    everything = outcome.before + outcome.quiet + outcome.after
    return {
        "organisations": f.get("organisations"), "alerts": f.get("alerts"),
        "offered_ticks_per_s": _median(everything, "offered_ticks_per_s"),
        "feed_cpu_us_per_quote_before": before, "feed_cpu_us_per_quote_after": after,
        "feed_cpu_ratio": round(after / before, 2) if before and after else None,
        "feed_cpu_us_per_quote_added": _difference(after, before),
        "feed_cpu_us_per_quote_quiet": quiet,
        "feed_cpu_us_per_quote_evaluating": _difference(quiet, before),
        "feed_cpu_ms_per_firing": round(10 * firing_pct / written_per_s, 2)
        if firing_pct is not None and written_per_s else None,
        "feed_cpu_pct_before": _median(outcome.before, "feed_cpu_pct"),
        "feed_cpu_pct_after": _median(outcome.after, "feed_cpu_pct"),
        "feed_cpu_pct_quiet": _median(outcome.quiet, "feed_cpu_pct"),
        "engine_evaluate_us_per_quote": f.get("replay", {}).get("us_per_quote"),
        "load_seconds": f.get("load", {}).get("engine_seconds"),
        "load_seconds_alone": f.get("load", {}).get("alone_seconds"),
        "reload_seconds": f.get("load", {}).get("reload_seconds"),
        "fire_drain_seconds": f.get("fired", {}).get("drain_seconds"),
        "feed_rss_mb_before": f.get("feed_rss_mb", {}).get("before"),
        "feed_rss_mb_after": f.get("feed_rss_mb", {}).get("after"),
        "fired_in_windows": sum(fired) if fired else None,
        "fired_per_s": round(fired_per_s, 1) if fired_per_s is not None else None,
        "written_per_s": round(written_per_s, 1) if written_per_s is not None else None,
        "fired_in_quiet_windows": sum(row["fired"] or 0 for row in outcome.quiet) if outcome.quiet else None,
        "fired_total": f.get("fired", {}).get("total"),
        "machine_cpu_pct": _median(everything, "machine_cpu_pct"),
        "others_cpu_pct": _median(everything, "others_cpu_pct"),
    }  # fmt: skip


def alerts_add(c: AlertConfig, outcome: Outcome, prices: dict[str, LastQuote], schemas: list[str],
               symbols: list[str], sentinel: str) -> None:  # fmt: skip
    """Insert every organisation's alerts around the feed's last prices."""
    missing = [s for s in symbols if s not in prices]
    if missing:
        outcome.results.note(f"{len(missing)} symbols had no quote yet: no alerts on them")
    popular = [s for s in symbols if s in prices]
    random.Random(c.seed).shuffle(popular)  # popularity rank: a seeded order, not the alphabet's
    rng = random.Random(c.seed + 1)

    def rows(schema: str) -> list[dict[str, Any]]:
        fields = alert_rows(rng, prices, popular, c.alerts_per_organisation, c.distance)
        if schema == schemas[-1]:  # the sentinel: its watch appears once the last organisation is loaded
            fields[-1] = {**fields[-1], "name": "sentinel", "symbol": sentinel, "condition": "price_above",
                          "level": Decimal("999999")}  # fmt: skip
        return fields

    started = time.monotonic()
    total = alerts_insert(schemas, rows)
    outcome.figures["alerts"] = total
    outcome.figures["setup"]["alerts_insert_seconds"] = round(time.monotonic() - started, 2)
    print(f"Inserted {total:,} alerts in {outcome.figures['setup']['alerts_insert_seconds']} s", flush=True)


def measured(h: Harness, c: AlertConfig, outcome: Outcome, created: Organisations, symbols: list[str],
             sentinels: tuple[str, str]) -> dict[str, LastQuote]:  # fmt: skip
    """Start tickerdeck, open the streams, measure before, load the alerts, measure after, then quiet."""
    context = h.context
    client = redis.Redis.from_url(context.redis_url, socket_timeout=10)
    schemas, system = schemas_of(created), Tickerdeck(created)
    with client, system.start(context) as running:
        streams = streams_plan(c.connections, organisations=c.stream_organisations, symbols=symbols, seed=c.seed)
        opened: Opened = open_streams(h, system, running, streams)
        outcome.figures["streams"] = {"connections": c.connections, "organisations": c.stream_organisations,
                                      "opened": len(opened.streams)}  # fmt: skip
        h.publisher.request("rate", rate=c.rate)
        time.sleep(c.warmup)
        print(f"\nBefore: no alerts, {c.rate:.0f} ticks/s\n  {table_header()}", flush=True)
        outcome.before = measure_side(h, running, "before", c)
        rss_before = rss_mb([feed_process(running)])
        prices = last_quotes(client, context.redis_prefix)
        alerts_add(c, outcome, prices, schemas, symbols, sentinels[0])
        load_seconds = engine_reload(client, context.redis_prefix, schemas, sentinels[0])
        outcome.figures["load"] = {"engine_seconds": round(load_seconds, 3), "organisations": len(schemas)}
        rss_loaded = rss_mb([feed_process(running)])
        print(f"The feed's engine loaded {len(schemas):,} organisations' alerts in {load_seconds:.2f} s", flush=True)
        time.sleep(c.warmup)
        print(f"\nQuiet: {outcome.figures['alerts']:,} alerts, all in their cooldown\n  {table_header()}", flush=True)
        outcome.quiet = measure_side(h, running, "quiet", c)
        outcome.figures["feed_rss_mb"] = {"before": round(rss_before, 1), "loaded": round(rss_loaded, 1),
                                          "quiet": round(rss_mb([feed_process(running)]), 1)}  # fmt: skip
        after_side(h, c, outcome, running, (client, schemas, sentinels[1]))
        h.publisher.request("rate", rate=0)
        fired_drain(outcome, schemas)
        h.client.request("close_all")
        time.sleep(DRAIN_SECONDS)
    fired_count(outcome, schemas)
    return prices


def after_side(h: Harness, c: AlertConfig, outcome: Outcome, running: Running,
               where: tuple[redis.Redis[bytes], list[str], str]) -> None:  # fmt: skip
    """The alerts released (never fired), reloaded by the engine (timed: all of them, the index full), measured."""
    client, schemas, sentinel = where
    alerts_release(schemas, sentinel)
    seconds = engine_reload(client, h.context.redis_prefix, schemas, sentinel)
    outcome.figures["load"]["reload_seconds"] = round(seconds, 3)
    print(f"\nAfter: the same alerts as if new (none in a cooldown), reloaded in {seconds:.2f} s\n  {table_header()}",
          flush=True)  # fmt: skip
    time.sleep(c.warmup)
    outcome.after = measure_side(h, running, "after", c)
    outcome.figures["feed_rss_mb"]["after"] = round(rss_mb([feed_process(running)]), 1)


def fired_drain(outcome: Outcome, schemas: list[str]) -> None:
    """With no more quotes, wait until the engine's queue of firings is written (no new event for a poll)."""
    started, count = time.monotonic(), -1
    while time.monotonic() - started < FIRE_DRAIN_MAX_SECONDS:
        time.sleep(FIRE_POLL_SECONDS)
        latest = len(fired_quote_times(schemas))
        if latest == count:
            break
        count = latest
    else:
        outcome.results.note(f"firings were still being written {FIRE_DRAIN_MAX_SECONDS:.0f} s after the windows")
    outcome.figures["fired"] = {"drain_seconds": round(time.monotonic() - started - FIRE_POLL_SECONDS, 1)}


def fired_count(outcome: Outcome, schemas: list[str]) -> None:
    """Firings per quiet- and after-window, by the time of the quote that crossed the level."""
    times = fired_quote_times(schemas)
    for row in outcome.quiet + outcome.after:
        row["fired"] = sum(row["start_ms"] <= ts < row["end_ms"] for ts, _ in times)
        row["written"] = sum(row["start_ms"] <= written < row["end_ms"] for _, written in times)
    alerts = outcome.figures.get("alerts") or 0
    share = round(100 * len(times) / alerts, 2) if alerts else None
    outcome.figures["fired"].update({"total": len(times), "share_pct": share})


def run(c: AlertConfig, outcome: Outcome, stack: ExitStack) -> None:
    context = context_start(label="alerts-", database_url=c.database_url, redis_url=c.redis_url,
                            skip_bootstrap=c.skip_bootstrap, stack=stack)  # fmt: skip
    symbols = directory_symbols(c.symbols + 2)
    if len(symbols) < c.symbols + 2:
        raise RuntimeError(f"the symbol directory has {len(symbols)} symbols, not {c.symbols + 2}: run bootstrap")
    sentinels, symbols = (symbols[-2], symbols[-1]), symbols[:-2]  # the sentinel alert's symbols never tick
    created = Organisations()
    stack.callback(organisations_remove, created)
    seconds = organisations_with_alert_room(created, c, context.run_id)
    outcome.figures.update({"organisations": c.organisations, "alerts_per_organisation": c.alerts_per_organisation,
                            "setup": {"organisations_seconds": round(seconds, 1)}})  # fmt: skip
    print(f"Created {c.organisations:,} organisations in {seconds:.1f} s", flush=True)
    h = harness_start(c.streams(), context, symbols, outcome.results, stack)
    prices = measured(h, c, outcome, created, symbols, sentinels)
    alone, loaded = load_alone(schemas_of(created))
    outcome.figures["load"]["alone_seconds"] = round(alone, 4)
    outcome.figures["load"]["rules"] = sum(len(alerts.rules) for alerts in loaded.values())
    outcome.figures["replay"] = replay(loaded, symbols, prices, c)
    outcome.completed = True


# -- output ------------------------------------------------------------------------------------------
COLUMNS = [  # (title, field, width)
    ("side", "side", 6), ("ticks/s", "offered_ticks_per_s", 7), ("deliv%", "delivered_pct", 6),
    ("p99ms", "p99_ms", 5), ("feedCPU%", "feed_cpu_pct", 8), ("feed µs/quote", "feed_cpu_us_per_quote", 13),
    ("webCPU%", "web_cpu_pct", 7), ("cliCPU%", "client_cpu_pct", 7), ("allCPU%", "machine_cpu_pct", 7),
    ("others%", "others_cpu_pct", 7), ("feed RSS MB", "feed_rss_mb", 11), ("fired", "fired", 5),
    ("written", "written", 7),
]  # fmt: skip


def table_header() -> str:
    return "  ".join(title.rjust(width) for title, _, width in COLUMNS)


def row_line(row: dict[str, Any]) -> str:
    return "  ".join(("-" if row[name] is None else str(row[name])).rjust(width) for _, name, width in COLUMNS)


def summary_lines(document: dict[str, Any]) -> Iterator[str]:
    s = document["summary"]
    yield f"\n  {table_header()}"
    for row in [*document["before"]["windows"], *document["quiet"]["windows"], *document["after"]["windows"]]:
        yield "  " + row_line(row)
    yield (f"\nSummary: {s['alerts']} alerts over {s['organisations']} organisations at {s['offered_ticks_per_s']} "
           f"ticks/s")  # fmt: skip
    yield (f"  feed CPU per quote: {s['feed_cpu_us_per_quote_before']} µs before, "
           f"{s['feed_cpu_us_per_quote_after']} µs after (x{s['feed_cpu_ratio']}, +{s['feed_cpu_us_per_quote_added']}"
           f" µs), {s['feed_cpu_us_per_quote_quiet']} µs with every alert in its cooldown (evaluating: "
           f"+{s['feed_cpu_us_per_quote_evaluating']} µs; the index alone: {s['engine_evaluate_us_per_quote']} µs); "
           f"writing firings: {s['feed_cpu_ms_per_firing']} ms of feed CPU each")  # fmt: skip
    yield (f"  load: {s['load_seconds']} s in the feed's engine ({s['load_seconds_alone']} s alone; reload of all "
           f"{s['reload_seconds']} s); feed RSS "
           f"{s['feed_rss_mb_before']} -> {s['feed_rss_mb_after']} MB")  # fmt: skip
    yield (f"  fired: {s['fired_in_windows']} in the after windows ({s['fired_per_s']}/s; written "
           f"{s['written_per_s']}/s), {s['fired_total']} in "
           f"all, written {s['fire_drain_seconds']} s after the last window at the latest; "
           f"machine {s['machine_cpu_pct']} % CPU (others than the bench: {s['others_cpu_pct']} %)")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    c = parse(argv)
    started = time.monotonic()
    outcome = Outcome(c, datetime.now(UTC).isoformat(timespec="seconds"), Results("", c.as_json()))
    try:
        run_stopping_everything(
            partial(run, c, outcome), outcome.results.note, "Stopping and removing the organisations…"
        )
    finally:
        document = outcome.document()
        report.write(document, c.output)
    for line in summary_lines(document):
        print(line)
    print(f"\nWrote {c.output} in {time.monotonic() - started:.0f} s")
    return 0 if outcome.completed else 1


if __name__ == "__main__":
    sys.exit(main())
