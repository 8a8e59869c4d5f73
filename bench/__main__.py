"""`python -m bench [--quick] [...]`: the streaming benchmark (`make bench`, `make bench-quick`).

Starts a tick publisher and a load client, then each system under test in turn on loopback, then
(with tickerdeck) the widget scenario (bench.widget), and writes the table and
bench/results/latest.json. Every process it starts is stopped on exit, on Ctrl-C and on SIGTERM,
with bounded waits.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from types import FrameType

from bench import environment, report
from bench.config import Config, parse
from bench.processes import ROOT, Controlled, python_module
from bench.report import Results
from bench.runner import Harness, max_streams_needed, run_system
from bench.systems import Context, System
from bench.tenants import (
    Organisations,
    WidgetTenant,
    directory_symbols,
    organisations_create,
    organisations_remove,
    widget_tenant_create,
)
from bench.widget import ORIGIN, run_widget, widget_symbols
from bench.workload import streams_plan


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Further signals are ignored: the clean-up that follows has bounded waits of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def django_setup(context: Context) -> None:
    """This process's Django: the product's settings and environment (bench.setup_settings)."""
    from bench.systems.tickerdeck import product_environment

    os.environ.update({**product_environment(context), "DJANGO_SETTINGS_MODULE": "bench.setup_settings"})
    import django

    django.setup()


def systems_for(config: Config, organisations: Organisations) -> list[System]:
    from bench.systems.naive import Naive
    from bench.systems.raw import Raw
    from bench.systems.tickerdeck import Tickerdeck

    known: dict[str, System] = {"naive": Naive(), "raw": Raw(), "tickerdeck": Tickerdeck(organisations)}
    return [known[name] for name in config.systems]


def run(config: Config, results: Results, stack: ExitStack) -> None:
    run_id = secrets.token_hex(4)
    log_dir = ROOT / "artifacts" / "bench" / run_id
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"Run {run_id}: logs in {log_dir.relative_to(ROOT)}")
    database_url, redis_url, services = environment.services_find(config.database_url, config.redis_url)
    stack.callback(lambda: services)  # keeps embedded servers alive until the end
    prefix = f"bench:{run_id}:"
    context = Context(run_id, redis_url, database_url, prefix + "ticks", prefix, log_dir, secrets.token_urlsafe(50))
    stack.callback(lambda: print(f"  removed {environment.redis_keys_remove(redis_url, prefix)} Redis keys"))
    django_setup(context)
    if not config.skip_bootstrap:
        print("Setting up the bench database (manage.py bootstrap)…", flush=True)
        product = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.prod")
        environment.bootstrap(product, log_dir / "bootstrap.log")
    symbols = directory_symbols(config.symbols)
    if len(symbols) < config.symbols:
        raise RuntimeError(f"the symbol directory has {len(symbols)} symbols, not {config.symbols}: run bootstrap")
    organisations = Organisations()
    stack.callback(organisations_remove, organisations)
    if "tickerdeck" in config.systems:
        started = time.monotonic()
        organisations_create(organisations, count=config.organisations, run_id=run_id,
                             max_streams=max_streams_needed(config))  # fmt: skip
        print(f"Created {config.organisations} organisations in {time.monotonic() - started:.1f} s")
    widget: WidgetTenant | None = None
    if "tickerdeck" in config.systems and config.widget_viewers:
        widget = widget_tenant_create(organisations, run_id=run_id, viewers=config.widget_viewers, origin=ORIGIN,
                                      symbols=widget_symbols(symbols, config.widget_symbols, config.seed))  # fmt: skip
        print(f"Created the widget {widget.public_id} of {widget.slug} ({len(widget.symbols)} symbols, room for "
              f"{widget.max_widget_viewers} viewers)")  # fmt: skip
    env = dict(os.environ)
    publish = python_module("bench.publisher", "--redis-url", redis_url, "--channel", context.channel,
                            "--symbols", ",".join(symbols), "--seed", str(config.seed))  # fmt: skip
    publisher = Controlled("publisher", publish, env, log_dir).stopped_by(stack)
    client = Controlled("client", python_module("bench.client"), env, log_dir).stopped_by(stack)
    harness = Harness(config, context, client, publisher, environment.redis_process(redis_url), len(symbols), results)
    workloads = {n: streams_plan(n, organisations=config.organisations, symbols=symbols, seed=config.seed)
                 for n in config.connections}  # fmt: skip
    print("\n  " + report.table_header())
    for system in systems_for(config, organisations):
        run_system(harness, system, workloads)
    if widget is not None:
        from bench.systems.tickerdeck import Tickerdeck

        run_widget(harness, Tickerdeck(organisations), widget)
    results.completed = True


def main(argv: Sequence[str] | None = None) -> int:
    config = parse(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    started = time.monotonic()
    results = Results(datetime.now(UTC).isoformat(timespec="seconds"), config.as_json())
    try:
        with ExitStack() as stack:
            run(config, results, stack)
            print("\nStopping…", flush=True)
    except KeyboardInterrupt:
        results.note("interrupted: the results are partial")
    finally:
        document = results.document(config.systems, config.connections)
        report.write(document, config.output)
    print("\n  " + report.table_header())
    for row in [*results.runs, *results.widget["steps"]]:
        print("  " + report.table_line(row))
    report.print_summary(document)
    print(f"\nWrote {config.output} in {time.monotonic() - started:.0f} s")
    return 0 if results.completed else 1


if __name__ == "__main__":
    sys.exit(main())
