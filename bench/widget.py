"""The widget scenario: many viewers of one widget, all in one organisation's room (tickerdeck only).

It runs after the systems, in the same run (same publisher, load client and machine), on a tickerdeck
started afresh, so its memory and connect figures do not carry the previous ramps' load:

1. token endpoint: `--token-requests` POSTs to /widgets/<public id>/token/ on the organisation's
   host with the widget's allowed Origin, `--token-concurrency` in flight on keep-alive
   connections, from the load client: requests/s, p50/p99 latency, errors. A few from another
   Origin must get 403 (the check is on).
2. viewers: `--widget-viewers` websockets `?widget=<id>&token=<token>` with the same Origin, using
   the tokens of step 1. The first few warm up (the room, thread and database pools); the rest are
   timed as the systems' connects are: connects/s to the snapshot frame, each connect's time from
   its turn, and the server's RSS growth per viewer with no ticks flowing. The lease store must then
   hold one widget place per viewer and no stream place.
3. streaming: the publisher ticks only the widget's symbols (round-robin, evenly spaced: the other
   symbols would never reach this organisation's room), so at each step of `--widget-quotes` every
   viewer is sent that many quotes per second and each tick fans out to every viewer. Measured as
   the systems' ramps are; two failed steps in a row end it. The headline is the highest sustained
   step (>= 99 % delivered, p99 <= 100 ms), or the first step when none was.
"""

from __future__ import annotations

import random
import time
from functools import partial
from typing import Any
from urllib.parse import quote

import orjson
import psutil

from bench import report
from bench.processes import ChildError
from bench.runner import (
    DRAIN_SECONDS,
    FAILED_STEPS_TO_STOP,
    MIN_SETTLE_SECONDS,
    OPEN_TIMEOUT_SECONDS,
    Harness,
    Opened,
    Window,
    cpu_seconds,
    rss_mb,
    step_row,
)
from bench.systems import Running
from bench.systems.tickerdeck import Tickerdeck
from bench.tenants import WidgetTenant
from bench.workload import Stream

SYSTEM = "widget"  # its rows' `system` in the table
ORIGIN = "https://viewer.bench.example"  # the page that embeds the widget
OTHER_ORIGIN = "https://elsewhere.bench.example"  # a page it is not allowed on
OTHER_ORIGIN_REQUESTS = 5
WARM_VIEWERS = 10
REQUEST_TIMEOUT_SECONDS = 30.0


def widget_symbols(symbols: list[str], count: int, seed: int) -> list[str]:
    """The widget's symbols: `count` of the publisher's, drawn with the run's seed."""
    return sorted(random.Random(seed).sample(symbols, count))


def run_widget(h: Harness, system: Tickerdeck, tenant: WidgetTenant) -> None:
    c = h.config
    widget = h.results.widget
    widget["viewers"], widget["symbols"] = c.widget_viewers, list(tenant.symbols)
    print(f"\nwidget: {c.widget_viewers} viewers of one widget ({len(tenant.symbols)} symbols, one organisation), "
          f"{c.token_requests} token requests ({c.token_concurrency} in flight):", flush=True)  # fmt: skip
    try:
        with system.start(h.context) as running:
            tokens = token_load(h, running, tenant)
            opened = viewers_open(h, running, tenant, tokens)
            if opened.streams:
                stream(h, running, opened, tenant)
            else:
                h.results.note("widget: no viewer could connect: nothing streamed")
            h.client.request("close_all")
            time.sleep(DRAIN_SECONDS)
    except ChildError as exc:
        if not (h.client.alive() and h.publisher.alive()):
            raise
        h.results.note(f"widget scenario failed: {exc}")
        try:
            h.publisher.request("rate", rate=0)
            h.client.request("close_all")
        except ChildError:
            pass


def token_load(h: Harness, running: Running, tenant: WidgetTenant) -> list[str]:
    """The token endpoint under load; returns the distinct tokens it issued (they carry a time in seconds)."""
    c = h.config
    request: dict[str, Any] = {
        "port": running.port, "method": "POST", "host": f"{tenant.slug}.localhost",
        "path": f"/widgets/{tenant.public_id}/token/", "request_timeout": REQUEST_TIMEOUT_SECONDS,
    }  # fmt: skip
    # A few first, not counted: the server's first request loads the URLconf, pools fill.
    h.client.request("http", **request, headers={"Origin": tenant.origin}, requests=min(c.token_concurrency, 20),
                     concurrency=c.token_concurrency, timeout=2 * REQUEST_TIMEOUT_SECONDS)  # fmt: skip
    with Usage(running) as usage:
        answer = h.client.request("http", **request, headers={"Origin": tenant.origin}, requests=c.token_requests,
                                  concurrency=c.token_concurrency,
                                  timeout=2 * REQUEST_TIMEOUT_SECONDS + c.token_requests / 10)  # fmt: skip
    other = h.client.request("http", **request, headers={"Origin": OTHER_ORIGIN}, requests=OTHER_ORIGIN_REQUESTS,
                             concurrency=1, timeout=2 * REQUEST_TIMEOUT_SECONDS)  # fmt: skip
    tokens = []
    for body in answer["bodies"]:
        document = orjson.loads(body)
        if isinstance(document.get("token"), str) and document.get("expires_in", 0) > 0:
            tokens.append(document["token"])
    refused_elsewhere = int(other["errors"].get("http 403", 0))
    h.results.widget["token"] = {
        "requests": c.token_requests, "concurrency": c.token_concurrency, "ok": answer["succeeded"],
        "errors": answer["errors"], "seconds": round(answer["seconds"], 3),
        "requests_per_s": round(answer["requests_per_s"], 1) if answer["succeeded"] else None,
        "p50_ms": answer["p50_ms"], "p99_ms": answer["p99_ms"], "max_ms": answer["max_ms"],
        "connections": answer["connections"], "distinct_tokens": len(tokens), "other_origin_refused": refused_elsewhere,
        "server_cpu_ms_per_request": usage.server_ms_per(answer["succeeded"]),
        "server_cpu_pct": usage.server_pct, "machine_cpu_pct": usage.machine_pct,
    }  # fmt: skip
    t = h.results.widget["token"]
    print(f"  token endpoint: {t['ok']}/{t['requests']} in {t['seconds']:.1f} s = {t['requests_per_s']} requests/s; "
          f"p50 {t['p50_ms']} ms, p99 {t['p99_ms']} ms, max {t['max_ms']} ms; errors {t['errors']}; "
          f"another origin refused {refused_elsewhere}/{OTHER_ORIGIN_REQUESTS}; server CPU "
          f"{t['server_cpu_ms_per_request']} ms per request ({t['server_cpu_pct']} %, "
          f"machine {t['machine_cpu_pct']} %)")  # fmt: skip
    if answer["errors"]:
        h.results.note(f"widget token endpoint: {sum(answer['errors'].values())} errors: {answer['errors']}")
    if refused_elsewhere != OTHER_ORIGIN_REQUESTS:
        h.results.note(f"widget token endpoint: another origin got {other['succeeded']} tokens and {other['errors']}")
    if not tokens:
        from widgets.tokens import widget_token_issue

        h.results.note("widget token endpoint issued no token: the viewers use tokens minted by widgets.tokens")
        tokens = [widget_token_issue(schema_name=tenant.schema_name, public_id=tenant.public_id, origin=tenant.origin)]
    return tokens


def viewers_open(h: Harness, running: Running, tenant: WidgetTenant, tokens: list[str]) -> Opened:
    """Every viewer, a few first (warm-up), then the rest timed, the server's RSS read around them."""
    c = h.config
    host = f"{tenant.slug}.localhost"
    targets = [{"host": host, "origin": tenant.origin,
                "path": f"/ws/stock-market/?widget={tenant.public_id}&token={quote(tokens[i % len(tokens)], safe='')}"}
               for i in range(c.widget_viewers)]  # fmt: skip
    split = min(WARM_VIEWERS, len(targets) - 1) if len(targets) > 1 else len(targets)
    answers, rss = [], []
    for batch in (targets[:split], targets[split:]):
        if batch:
            with Usage(running) as usage:  # the last batch's is kept: the timed one
                answers.append(h.client.request("open", port=running.port, targets=batch, first_frame="snapshot",
                                                concurrency=c.concurrency, connect_timeout=OPEN_TIMEOUT_SECONDS,
                                                timeout=OPEN_TIMEOUT_SECONDS + len(batch) / 20))  # fmt: skip
            time.sleep(max(c.warmup, MIN_SETTLE_SECONDS))
        rss.append(rss_mb(running.web) * 2**20)
    opened = sum(a["opened"] for a in answers)
    refused: dict[str, int] = {}
    for answer in answers:
        for reason, count in answer["refused"].items():
            refused[reason] = refused.get(reason, 0) + count
    if refused:
        h.results.note(f"widget: {sum(refused.values())} of {len(targets)} viewers refused: {refused}")
    widget_leases, stream_leases = lease_counts(tenant)
    if widget_leases != opened or stream_leases:
        h.results.note(f"widget: {opened} viewers open, but {widget_leases} widget and {stream_leases} stream leases")
    timed = answers[-1]
    timed_share = len(answers) == 2 and timed["opened"]
    h.results.widget["open"] = {
        "viewers": len(targets), "opened": opened, "refused": len(targets) - opened, "refused_reasons": refused,
        "warm_up": answers[0]["opened"] if len(answers) == 2 else 0, "timed": timed["opened"],
        "seconds": round(timed["seconds"], 3),
        "connects_per_s": round(timed["opened"] / timed["seconds"], 1) if timed["opened"] else None,
        "connect_p50_ms": timed["connect_p50_ms"], "connect_p99_ms": timed["connect_p99_ms"],
        "server_rss_mb_before": round(rss[0] / 2**20, 1), "server_rss_mb_after": round(rss[-1] / 2**20, 1),
        "rss_kb_per_viewer": round((rss[-1] - rss[0]) / 1024 / timed["opened"], 1) if timed_share else None,
        "widget_leases": widget_leases, "stream_leases": stream_leases,
        "server_cpu_ms_per_connect": usage.server_ms_per(timed["opened"]),
        "server_cpu_pct": usage.server_pct, "machine_cpu_pct": usage.machine_pct,
    }  # fmt: skip
    o = h.results.widget["open"]
    print(f"  viewers: opened {opened}/{len(targets)}; the last {o['timed']} in {o['seconds']:.1f} s = "
          f"{o['connects_per_s']} connects/s (each p50 {o['connect_p50_ms']} ms, p99 {o['connect_p99_ms']} ms); "
          f"server CPU {o['server_cpu_ms_per_connect']} ms per connect ({o['server_cpu_pct']} %, machine "
          f"{o['machine_cpu_pct']} %); server RSS {o['server_rss_mb_before']} -> {o['server_rss_mb_after']} MB = "
          f"{o['rss_kb_per_viewer']} KB per viewer; leases: {widget_leases} widget, "
          f"{stream_leases} stream")  # fmt: skip
    symbols = tenant.symbols
    h.publisher.request("weights", weights=dict.fromkeys(symbols, opened))
    return Opened(len(targets), [Stream(0, symbols, False)] * opened, float(opened))  # a tick reaches every viewer


class Usage:
    """CPU while a block runs: the web server's own (the feed's left out) and the whole machine's.

    The machine is shared: its figure says how much else ran beside the bench (100 % = one core).
    """

    def __init__(self, running: Running) -> None:
        self.web = running.web
        self.server_seconds = self.wall = 0.0
        self.server_pct: float | None = None
        self.machine_pct: float | None = None

    def __enter__(self) -> Usage:
        self._cpu, self._started = cpu_seconds(self.web), time.monotonic()
        psutil.cpu_percent()  # starts the machine-wide reading
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.monotonic() - self._started
        self.server_seconds = cpu_seconds(self.web) - self._cpu
        self.machine_pct = round(psutil.cpu_percent() * (psutil.cpu_count() or 1), 1)
        self.server_pct = round(100 * self.server_seconds / self.wall, 1) if self.wall > 0 else None

    def server_ms_per(self, count: int) -> float | None:
        return round(1000 * self.server_seconds / count, 2) if count else None


def lease_counts(tenant: WidgetTenant) -> tuple[int, int]:
    """(this widget's viewer places, the organisation's stream places) in the lease store now."""
    from streaming.state import LeaseKind, lease_ids_sync
    from tenants.models import Organisation
    from widgets.selectors import widget_viewers

    organisation = Organisation.objects.get(pk=tenant.organisation_id)
    viewers = sum(widget_viewers(organisation=organisation).values())  # as the widget pages count them
    return viewers, len(lease_ids_sync(LeaseKind.STREAM, tenant.schema_name))


def stream(h: Harness, running: Running, opened: Opened, tenant: WidgetTenant) -> None:
    """Each viewer sent `--widget-quotes` quotes/s, step by step, until two steps in a row fail."""
    c = h.config
    # Only the widget's symbols tick, and every viewer follows all of them: ticks/s = quotes/s per viewer.
    rates = list(c.widget_quotes)
    h.publisher.request("focus", symbols=list(tenant.symbols))
    window = Window(h, running)
    h.publisher.request("rate", rate=rates[0])
    time.sleep(c.warmup)
    failures = 0
    steps: list[report.Row] = []
    try:
        for index, per_viewer in enumerate(rates):
            following = rates[index + 1] if index + 1 < len(rates) else 0.0
            result = window.measure(c.seconds, then=partial(h.publisher.request, "rate", rate=following))
            row = {**step_row(SYSTEM, opened, 1, result), "quotes_per_viewer_per_s": per_viewer}
            steps.append(row)
            h.results.widget["steps"] = steps
            print("  " + report.table_line(row), flush=True)
            try:
                running.check()
            except ChildError as exc:
                h.results.note(f"widget: the server stopped at {per_viewer} quotes/s per viewer: {exc}")
                break
            failures = failures + 1 if report.failed(row) else 0
            if failures >= FAILED_STEPS_TO_STOP:
                print(f"  widget: {failures} steps in a row under 99 % delivered or p99 > 1 s: stopped")
                break
    finally:
        h.publisher.request("rate", rate=0)
        h.publisher.request("focus", symbols=None)
    if not steps:
        return
    sustained = [row for row in steps if report.sustained(row)]
    if not sustained:
        h.results.note("widget: no step was sustained (>= 99 % delivered and p99 <= 100 ms): the headline is the first")
    headline = max(sustained, key=lambda r: r["quotes_per_viewer_per_s"]) if sustained else steps[0]
    expected, delivered = headline["expected_ticks_per_s"], headline["delivered_ticks_per_s"]
    h.results.widget["streaming"] = {
        "quotes_per_viewer_per_s": headline["quotes_per_viewer_per_s"],
        "offered_ticks_per_s": headline["offered_ticks_per_s"], "expected_quotes_per_s": expected,
        "delivered_quotes_per_s": delivered,
        "delivered_ratio": round(delivered / expected, 4) if expected else None,
        "frames_per_s": headline["frames_per_s"], "p50_ms": headline["p50_ms"], "p99_ms": headline["p99_ms"],
        "max_ms": headline["max_ms"], "server_cpu_pct": headline["server_cpu_pct"],
        "rss_mb": headline["rss_mb"], "sustained": bool(sustained),
    }  # fmt: skip
    if expected and delivered > expected:
        h.results.note(f"widget: more quotes delivered than published for the viewers ({delivered} > {expected})")


__all__ = ["ORIGIN", "run_widget", "widget_symbols"]
