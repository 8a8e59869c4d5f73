"""`python -m bench.soak` (`make soak`): the product under steady churn for ten minutes, checked for leaks.

The web server (`python -m config.server`) and the feed (`manage.py run_feed`, simulated quotes) with
production settings and production's per-address rate limits, against PostgreSQL and Redis found as
the bench finds them, in a scratch database (`td_soak`, dropped at the end) and a Redis namespace of
the run's own. A load client (bench.soak_client) holds `--connections` websockets over several
organisations, from many loopback addresses (Linux routes all of 127.0.0.0/8 to lo, so each looks
like a visitor of its own): member streams of symbols or of a watchlist, and widget viewers that ask
the token endpoint for a token first. Every second some end with a close frame, some vanish (a
reset, or a socket closed without a close frame), and their places open again. On timers an
organisation's plan is switched (realtime <-> delayed, through billing's service: `plan.changed`) and
a watchlist edited (through watchlists' services). Once, an abusive address hammers the connect step
and the token endpoint past their limits.

Checked: every process's memory flat (`soak_report.FLAT_RULE`), the lease store's counts equal to the
open connections at the end (and 0 once they close), no ERROR or traceback in any process's log,
every connect of the population accepted and no open connection closed by the server or left without
quotes, the abuser refused 4429 and 429 while nobody else is. Exit status 1 when a check fails.
Writes bench/results/soak-latest.json; every process it starts is stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench import report, soak_report
from bench.environment import Scratch
from bench.processes import ChildError, Controlled, python_module
from bench.session import context_start, run_stopping_everything
from bench.soak_report import Memory, Soak
from bench.systems import Context, Running
from bench.systems.tickerdeck import Tickerdeck
from bench.tenants import (
    Organisations,
    WidgetTenant,
    organisations_create,
    organisations_remove,
    widget_tenant_create,
)
from bench.widget import ORIGIN

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "soak-latest.json"
SCRATCH = Scratch("td_soak", "bench.soak scratch database")
ABUSER = "127.0.1.1"  # the abusive visitor's address; the population's are 127.0.0.2 and up
CONNECT_TIMEOUT_SECONDS = 30.0
SYMBOLS_PER_ORGANISATION = 20  # each organisation's pool: its streams and its watchlist draw from it
WIDGET_SYMBOLS = 10
STREAM = "/ws/stock-market/"


@dataclass(frozen=True)
class SoakConfig:
    connections: int
    minutes: float
    organisations: int
    viewers_pct: float
    watchlist_pct: float
    symbols_per_stream: int
    symbols: int
    churn: float | None  # connections ended per second (None: 1 % of them)
    plan_every: float
    watchlist_every: float
    addresses: int
    sample_every: float
    quiet_seconds: float
    abuse_at: float
    ws_connect_limit: str | None
    token_limit: str | None
    ticks_per_second: float | None
    concurrency: int
    seed: int
    output: Path
    database: str
    database_url: str | None
    redis_url: str | None
    skip_bootstrap: bool

    @property
    def churn_per_second(self) -> float:
        return self.churn if self.churn is not None else self.connections / 100

    @property
    def viewers(self) -> int:
        return round(self.connections * self.viewers_pct / 100)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "output": str(self.output), "churn_per_second": self.churn_per_second}


def parse(argv: Sequence[str] | None = None) -> SoakConfig:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000, help="held open throughout (default 2,000)")
    parser.add_argument("--minutes", type=float, default=10.0, help="of churn after the ramp (default 10)")
    parser.add_argument("--organisations", type=int, default=20, help="the member streams' organisations")
    parser.add_argument("--viewers-pct", type=float, default=10.0, help="share of connections that are widget viewers")
    parser.add_argument("--watchlist-pct", type=float, default=25.0, help="share of member streams on a watchlist")
    parser.add_argument("--symbols-per-stream", type=int, default=5)
    parser.add_argument("--symbols", type=int, default=200, help="the first N symbols of the directory")
    parser.add_argument("--churn", type=float, help="connections ended (and reopened) per second (default: 1 %%)")
    parser.add_argument("--plan-every", type=float, default=15.0, help="seconds between plan switches")
    parser.add_argument("--watchlist-every", type=float, default=5.0, help="seconds between watchlist edits")
    parser.add_argument("--addresses", type=int, default=40, help="loopback addresses of the population")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds between memory samples")
    parser.add_argument("--quiet-seconds", type=float, default=30.0,
                        help="an open connection without a quote for this long fails the soak")  # fmt: skip
    parser.add_argument("--abuse-at", type=float, default=0.25, help="when the abuser comes (share of the soak)")
    parser.add_argument("--ws-connect-limit", help="RATE_LIMIT_WS_CONNECTS for the run (default: production's)")
    parser.add_argument("--token-limit", help="RATE_LIMIT_WIDGET_TOKENS for the run (default: production's)")
    parser.add_argument("--ticks-per-second", type=float, help="SIMULATED_TICKS_PER_SECOND (default: production's)")
    parser.add_argument("--concurrency", type=int, default=50, help="handshakes in flight during the ramp")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--database", default=SCRATCH.name, help=f"scratch database (default {SCRATCH.name})")
    parser.add_argument("--database-url", help="use this database as it is, no scratch one (the suite's)")
    parser.add_argument("--redis-url")
    parser.add_argument("--skip-bootstrap", action="store_true", help="the database is already set up")
    config = SoakConfig(**vars(parser.parse_args(argv)))
    if not (0 < config.addresses <= 250 and config.organisations > 0 and config.connections > config.viewers):
        parser.error("give 1-250 addresses, at least one organisation and more connections than viewers")
    if not (0 <= config.abuse_at < 1 and config.minutes > 0 and config.symbols_per_stream <= SYMBOLS_PER_ORGANISATION):
        parser.error(f"--abuse-at is in [0, 1), --minutes above 0, --symbols-per-stream at most "
                     f"{SYMBOLS_PER_ORGANISATION}")  # fmt: skip
    return config


@dataclass
class Tenants:
    """What the soak made: organisations (the member streams' first, then the abuser's), plans, watchlists."""

    created: Organisations
    plans: tuple[int, int]  # realtime, delayed
    pools: list[list[str]]  # each member organisation's symbols
    watchlists: list[int]  # each member organisation's watchlist id
    widget: WidgetTenant | None = None  # when there are viewers


def tenants_create(c: SoakConfig, context: Context, created: Organisations, symbols: list[str]) -> Tenants:
    from billing.models import Plan
    from tenants.db import activate_public_schema, activate_schema
    from tenants.models import Organisation
    from watchlists.services import watchlist_create

    rng = random.Random(c.seed)
    members = c.connections - c.viewers
    # Room for each organisation's share twice over: a vanished connection's place is given back when
    # the server notices, which may come after its slot has connected again.
    max_streams = 2 * math.ceil(members / c.organisations) + 2 * c.concurrency
    organisations_create(created, count=c.organisations + 1, run_id=context.run_id, max_streams=max_streams)
    if created.plan_id is None:
        raise RuntimeError("organisations_create made no plan")
    realtime = Plan.objects.get(pk=created.plan_id)
    delayed = Plan.objects.create(name=f"Bench {context.run_id} delayed", slug=f"bench-{context.run_id}-delayed",
                                  max_symbols_per_stream=2 * c.symbols_per_stream, max_streams=max_streams,
                                  realtime=False, delay_minutes=1, is_public=False)  # fmt: skip
    created.other_plan_ids.append(delayed.pk)
    pools, watchlists = [], []
    for organisation in Organisation.objects.filter(pk__in=created.organisation_ids[: c.organisations]).order_by("pk"):
        pool = rng.sample(symbols, SYMBOLS_PER_ORGANISATION)
        activate_schema(organisation.schema_name)
        try:
            watchlist = watchlist_create(organisation=organisation, name="Soak", symbols=pool[: c.symbols_per_stream])
        finally:
            activate_public_schema()
        pools.append(pool)
        watchlists.append(watchlist.pk)
    widget = None
    if c.viewers:
        widget = widget_tenant_create(created, run_id=context.run_id, symbols=rng.sample(symbols, WIDGET_SYMBOLS),
                                      viewers=2 * c.viewers + 2 * c.concurrency, origin=ORIGIN)  # fmt: skip
    return Tenants(created, (realtime.pk, delayed.pk), pools, watchlists, widget)


def slots_plan(c: SoakConfig, t: Tenants) -> list[dict[str, Any]]:
    """Every connection of the population: viewers, then member streams round-robin over the organisations
    (every 1 in 1/watchlist_pct on its watchlist), each from one of the addresses in turn; shuffled."""
    rng = random.Random(c.seed + 1)
    slots: list[dict[str, Any]] = []
    if t.widget is not None:
        host = f"{t.widget.slug}.localhost"
        slots += [{"kind": "viewer", "host": host, "origin": t.widget.origin,
                   "path": f"{STREAM}?widget={t.widget.public_id}&token=",
                   "token_path": f"/widgets/{t.widget.public_id}/token/"}] * c.viewers  # fmt: skip
    watchlist_every = round(100 / c.watchlist_pct) if c.watchlist_pct > 0 else 0
    for index in range(c.connections - c.viewers):
        o = index % c.organisations
        member = {"host": f"{t.created.slugs[o]}.localhost", "cookie": f"sessionid={t.created.sessions[o]}"}
        if watchlist_every and (index // c.organisations) % watchlist_every == 0:
            slots.append({**member, "kind": "watchlist", "path": f"{STREAM}?watchlist={t.watchlists[o]}"})
        else:
            chosen = ",".join(rng.sample(t.pools[o], c.symbols_per_stream))
            slots.append({**member, "kind": "symbols", "path": f"{STREAM}?symbols={chosen}"})
    rng.shuffle(slots)
    return [{**slot, "source": f"127.0.0.{2 + index % c.addresses}"} for index, slot in enumerate(slots)]


def abuse_slots(c: SoakConfig, t: Tenants, symbols: list[str]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The abuser's connect (a member of its own organisation, the last one) and token request."""
    o = c.organisations
    connect = {"kind": "symbols", "host": f"{t.created.slugs[o]}.localhost", "source": ABUSER,
               "cookie": f"sessionid={t.created.sessions[o]}",
               "path": f"{STREAM}?symbols={','.join(symbols[: c.symbols_per_stream])}"}  # fmt: skip
    if t.widget is None:
        return connect, None
    token = {"kind": "viewer", "host": f"{t.widget.slug}.localhost", "source": ABUSER, "origin": t.widget.origin,
             "path": "", "token_path": f"/widgets/{t.widget.public_id}/token/"}  # fmt: skip
    return connect, token


def plan_switch(t: Tenants, index: int) -> None:
    """Switch a member organisation between the realtime and the delayed plan, as staff would in the admin."""
    from billing.models import Plan
    from billing.services import organisation_billing_save
    from tenants.models import Organisation

    organisation = Organisation.objects.get(pk=t.created.organisation_ids[index])
    realtime, delayed = t.plans
    organisation.plan = Plan.objects.get(pk=delayed if organisation.plan_id == realtime else realtime)
    organisation_billing_save(organisation=organisation, changed=["plan"])


def watchlist_edit(t: Tenants, index: int, rng: random.Random) -> int:
    """Swap one symbol of a member organisation's watchlist for another of its pool; the service calls made."""
    from tenants.db import activate_public_schema, activate_schema
    from tenants.models import Organisation
    from watchlists.models import Watchlist
    from watchlists.services import watchlist_add_symbols, watchlist_remove_symbol

    organisation = Organisation.objects.select_related("plan").get(pk=t.created.organisation_ids[index])
    activate_schema(organisation.schema_name)
    try:
        watchlist = Watchlist.objects.get(pk=t.watchlists[index])
        leaving = rng.choice(watchlist.symbols)
        coming = rng.choice([s for s in t.pools[index] if s not in watchlist.symbols])
        watchlist_remove_symbol(organisation=organisation, watchlist_id=watchlist.pk, symbol=leaving)
        watchlist_add_symbols(organisation=organisation, watchlist_id=watchlist.pk, symbols=[coming])
    finally:
        activate_public_schema()
    return 2


def limits_check(c: SoakConfig) -> tuple[Any, Any]:
    """The limits in force (as the servers read them), and a refusal if the population alone would reach them."""
    from core.ratelimit import rate_limit_item

    connects, tokens = rate_limit_item("ws_connect"), rate_limit_item("widget_token")
    if connects is None or tokens is None:
        raise SystemExit("The soak measures the per-address limits: neither may be off.")
    per_address = math.ceil(c.connections / c.addresses)  # the ramp: every slot at once
    churn = math.ceil(c.churn_per_second * connects.get_expiry() / c.addresses)
    if per_address + churn >= connects.amount or math.ceil(c.viewers / c.addresses) >= tokens.amount:
        raise SystemExit(f"{per_address} connects per address in the ramp (+{churn} per window of churn) would reach "
                         f"the limits ({connects}; {tokens}): give more --addresses.")  # fmt: skip
    return connects, tokens


def run(c: SoakConfig, soak: Soak, stack: ExitStack) -> None:
    for name, value in (("RATE_LIMIT_WS_CONNECTS", c.ws_connect_limit), ("RATE_LIMIT_WIDGET_TOKENS", c.token_limit)):
        if value is None:
            os.environ.pop(name, None)  # production's
        else:
            os.environ[name] = value
    context = context_start(label="soak-", database_url=c.database_url, redis_url=c.redis_url,
                            skip_bootstrap=c.skip_bootstrap, stack=stack, production_limits=True,
                            scratch=Scratch(c.database, SCRATCH.mark))  # fmt: skip
    connects_limit, tokens_limit = limits_check(c)
    soak.limits = {"ws_connect": str(connects_limit), "widget_token": str(tokens_limit)}
    soak.limit_amounts = (connects_limit.amount, tokens_limit.amount)
    from bench.tenants import directory_symbols

    symbols = directory_symbols(c.symbols)
    created = Organisations()
    stack.callback(organisations_remove, created)
    started = time.monotonic()
    tenants = tenants_create(c, context, created, symbols)
    print(f"Created {len(created.organisation_ids)} organisations in {time.monotonic() - started:.1f} s "
          f"(limits: connects {connects_limit}, tokens {tokens_limit})", flush=True)  # fmt: skip
    settings = {"MARKET_DATA_PROVIDER": "simulated"}
    if c.ticks_per_second is not None:
        settings["SIMULATED_TICKS_PER_SECOND"] = str(c.ticks_per_second)
    client = Controlled("soak-client", python_module("bench.soak_client"), dict(os.environ), context.log_dir)
    client.stopped_by(stack)
    with Tickerdeck(created, production_limits=True, settings=settings).start(context) as running:
        soak.memory = memory = Memory(running, client, context)
        soak.children = [*running.children, client]
        ramp(c, soak, client, running, tenants)
        timeline(c, soak, client, running, tenants, memory, symbols)
        end(c, soak, client, tenants, memory)
    client.stop()
    soak.logs_check()
    soak.completed = True


def ramp(c: SoakConfig, soak: Soak, client: Controlled, running: Running, t: Tenants) -> None:
    slots = slots_plan(c, t)
    print(f"Opening {len(slots)} connections from {c.addresses} addresses…", flush=True)
    answer = client.request("populate", port=running.port, slots=slots, concurrency=c.concurrency,
                            connect_timeout=CONNECT_TIMEOUT_SECONDS, seed=c.seed,
                            timeout=CONNECT_TIMEOUT_SECONDS + len(slots) / 5)  # fmt: skip
    soak.ramp = answer
    print(f"  opened {answer['opened']}/{len(slots)} in {answer['seconds']} s; refused {answer['refused']}")


def timeline(c: SoakConfig, soak: Soak, client: Controlled, running: Running, t: Tenants, memory: Memory,
             symbols: list[str]) -> None:  # fmt: skip
    """The soak itself: churn, plan switches, watchlist edits, one abuse, memory samples, progress lines."""
    rng = random.Random(c.seed + 2)
    client.request("churn", per_second=c.churn_per_second, quiet_seconds=c.quiet_seconds)
    seconds = 60 * c.minutes
    start = time.monotonic()
    memory.sample("start")
    due = {"plan": start + c.plan_every, "watchlist": start + c.watchlist_every, "sample": start + c.sample_every,
           "progress": start + min(30.0, seconds / 4), "abuse": start + c.abuse_at * seconds,
           "middle": start + seconds / 2}  # fmt: skip
    plan_turn = watchlist_turn = 0
    while (now := time.monotonic()) < start + seconds:
        running.check()
        if now >= due["plan"]:
            plan_switch(t, plan_turn % c.organisations)
            plan_turn += 1
            soak.plan_changes += 1
            due["plan"] += c.plan_every
        if now >= due["watchlist"]:
            soak.watchlist_edits += watchlist_edit(t, watchlist_turn % c.organisations, rng)
            watchlist_turn += 1
            due["watchlist"] += c.watchlist_every
        if now >= due["abuse"]:
            abuse(c, soak, client, running, t, symbols)
            due["abuse"] = math.inf
        if now >= due["middle"]:
            memory.sample("middle")
            due["middle"] = math.inf
        if now >= due["sample"]:
            memory.sample(None)
            due["sample"] += c.sample_every
        if now >= due["progress"]:
            soak.progress(now - start, client.request("stats"), memory)
            due["progress"] += 30.0
        time.sleep(max(0.0, min(min(due.values()), start + seconds) - time.monotonic()))
    memory.sample("end")
    soak.seconds = round(time.monotonic() - start, 1)


def abuse(c: SoakConfig, soak: Soak, client: Controlled, running: Running, t: Tenants, symbols: list[str]) -> None:
    """One address: half again as many connects as its limit allows, then a fifth more token requests."""
    connects, tokens = soak.limit_amounts
    connect_slot, token_slot = abuse_slots(c, t, symbols)
    attempts, token_requests = math.ceil(1.5 * connects), math.ceil(1.2 * tokens) if token_slot else 0
    print(f"  abuse from {ABUSER}: {attempts} connects, then {token_requests} token requests…", flush=True)
    answer = client.request("abuse", port=running.port, connect=connect_slot, token=token_slot or connect_slot,
                            attempts=attempts, token_requests=token_requests, concurrency=20,
                            timeout=120 + attempts / 5 + token_requests / 5)  # fmt: skip
    soak.abuse = {"address": ABUSER, "connect_attempts": attempts, "token_requests": token_requests, **answer}
    print(f"  abuse: connects {answer['connects']} in {answer['connect_seconds']} s; tokens {answer['tokens']} "
          f"in {answer['token_seconds']} s", flush=True)  # fmt: skip


def end(c: SoakConfig, soak: Soak, client: Controlled, t: Tenants, memory: Memory) -> None:
    """Churn stopped: the lease store against the open connections, then again once every one is closed."""
    settled = client.request("settle", timeout=CONNECT_TIMEOUT_SECONDS + 60)
    soak.final = settled
    open_members = settled["open"] - settled["open_by_kind"].get("viewer", 0)
    soak.leases_open = soak.leases_wait(t.created, (open_members, settled["open_by_kind"].get("viewer", 0)))
    soak.closed_all = client.request("close_all")["closed"]
    soak.leases_closed = soak.leases_wait(t.created, (0, 0))
    memory.redis_keys_after = memory.redis_keys()


def main(argv: Sequence[str] | None = None) -> int:
    c = parse(argv)
    soak = Soak(datetime.now(UTC).isoformat(timespec="seconds"), c.as_json())
    try:
        run_stopping_everything(partial(run, c, soak), soak.note, "Stopping and removing the organisations…")
    except ChildError as exc:
        soak.note(f"a process failed: {exc}")
    document = soak.document()
    report.write(document, c.output)
    soak_report.print_tables(document)
    print(f"\nWrote {c.output}")
    return 0 if document["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
