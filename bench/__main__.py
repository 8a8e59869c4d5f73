"""`python -m bench [--quick] [...]`: the streaming benchmark (`make bench`, `make bench-quick`).

Starts a tick publisher and a load client, then each system under test in turn on loopback, then
(with tickerdeck) the widget scenario (bench.widget), and writes the table and
bench/results/latest.json. Every process it starts is stopped on exit, on Ctrl-C and on SIGTERM,
with bounded waits.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from functools import partial

from bench import report
from bench.config import Config, parse
from bench.idle import run_idle
from bench.report import Results
from bench.runner import max_streams_needed, run_system
from bench.session import context_start, harness_start, run_stopping_everything
from bench.systems import System
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


def systems_for(config: Config, organisations: Organisations) -> list[System]:
    from bench.systems.naive import Naive
    from bench.systems.raw import Raw
    from bench.systems.tickerdeck import Tickerdeck

    known: dict[str, System] = {"naive": Naive(), "raw": Raw(), "tickerdeck": Tickerdeck(organisations)}
    return [known[name] for name in config.systems]


def run(config: Config, results: Results, stack: ExitStack) -> None:
    context = context_start(label="", database_url=config.database_url, redis_url=config.redis_url,
                            skip_bootstrap=config.skip_bootstrap, stack=stack)  # fmt: skip
    run_id = context.run_id
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
    harness = harness_start(config, context, symbols, results, stack)
    workloads = {n: streams_plan(n, organisations=config.organisations, symbols=symbols, seed=config.seed)
                 for n in config.connections}  # fmt: skip
    print("\n  " + report.table_header())
    for system in systems_for(config, organisations):
        run_system(harness, system, workloads)
    if widget is not None:
        from bench.systems.tickerdeck import Tickerdeck

        run_widget(harness, Tickerdeck(organisations), widget)
    if "tickerdeck" in config.systems and config.idle_connections:
        from bench.systems.tickerdeck import Tickerdeck

        run_idle(harness, Tickerdeck(organisations), symbols)
    results.completed = True


def main(argv: Sequence[str] | None = None) -> int:
    config = parse(argv)
    started = time.monotonic()
    results = Results(datetime.now(UTC).isoformat(timespec="seconds"), config.as_json())
    try:
        run_stopping_everything(partial(run, config, results), results.note, "Stopping…")
    finally:
        document = results.document(config.systems, config.connections)
        report.write(document, config.output)
    print("\n  " + report.table_header())
    for row in [*results.runs, *results.widget["steps"]]:
        print("  " + report.table_line(row))
    report.print_summary(document)
    report.print_pace(document["pace"])
    print(f"\nWrote {config.output} in {time.monotonic() - started:.0f} s")
    return 0 if results.completed else 1


if __name__ == "__main__":
    sys.exit(main())
