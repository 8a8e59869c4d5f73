"""`python -m bench.tenant_scale --count 10000`: many organisations in one database.

At each checkpoint (by default 0, 1,000 and `--count` organisations) it measures:
- sign-up: `--sample` organisations made through the product's own `organisation_create` (schema
  replayed from the template's SQL, or cloned without pg_dump; domain, owner membership), seconds
  each; the owner's password hashing is left out (one PBKDF2 hash is timed once and reported beside);
- `migrate_schemas` over every schema with django-tenants' multiprocessing executor (a release with no
  new migration: what each deploy's set-up step costs), at checkpoints from `--migrate-from` (1,000);
- the catalog: database size, pg_catalog's size, pg_class and pg_namespace rows;
- pg_dump writing the template's SQL afresh (what a deploy's `manage.py bootstrap` pays at that size).
Between checkpoints organisations are filled in as fast as the same sign-up allows (`--fill-workers`
at once, 2 by default), with a progress line.
`--autovacuum off|on` sets the server's autovacuum for the run (ALTER SYSTEM, reloaded) and puts the
previous setting back at the end; `keep` (default) leaves it and reports it. It runs in a scratch
database of its own (`td_orgscale`), created at the start and dropped at the end; `--max-seconds`
bounds the run (it then measures the checkpoint it reached and stops). Results:
bench/results/tenant-scale-<autovacuum>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from bench.organisations import scratch_database, signup_once

RESULTS = Path(__file__).resolve().parent / "results"
CATALOG_SQL = """
SELECT pg_database_size(current_database()),
       (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'pg_catalog'),
       (SELECT count(*) FROM pg_class),
       (SELECT count(*) FROM pg_namespace)
"""


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.tenant_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="organisations in the end (default 10,000)")
    parser.add_argument("--checkpoints", default="", help="counts to measure at (default 0,1000,COUNT)")
    parser.add_argument("--sample", type=int, default=20, help="sign-ups timed at each checkpoint (default 20)")
    parser.add_argument("--autovacuum", choices=("keep", "on", "off"), default="keep")
    parser.add_argument("--migrate-from", type=int, default=1000, help="run migrate_schemas at checkpoints from here")
    parser.add_argument("--processes", type=int, default=2, help="migrate_schemas worker processes (default 2)")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop filling after this long")
    parser.add_argument("--every", type=int, default=250, help="progress line every N organisations")
    parser.add_argument("--fill-workers", type=int, default=2, help="organisations made at once between checkpoints")
    parser.add_argument("--database", default="td_orgscale", help="scratch database name (default td_orgscale)")
    parser.add_argument("--resume", action="store_true",
                        help="go on with the organisations of a stopped run's scratch database (checkpoints below "
                             "its count are left out)")  # fmt: skip
    parser.add_argument("--keep-database", action="store_true", help="leave the scratch database at the end")
    return parser.parse_args(argv)


def checkpoints_of(args: argparse.Namespace) -> list[int]:
    raw = args.checkpoints or f"0,1000,{args.count}"
    return sorted({int(part) for part in raw.split(",") if part.strip()} | {args.count})


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    with scratch_database(args.database, resume=args.resume, keep=args.keep_database) as admin_url:
        restore = autovacuum_set(admin_url, args.autovacuum)
        try:
            from django.conf import settings

            settings.TENANT_MULTIPROCESSING_MAX_PROCESSES = args.processes
            result = scale_run(args, admin_url=admin_url)
        finally:
            restore()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"tenant-scale-{result['autovacuum']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    summary_print(result)
    print(f"\nWritten to {path}")
    return 0


def autovacuum_set(admin_url: str, mode: str) -> Any:
    """Set the server's autovacuum for the run; returns what puts the previous setting back."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT setting, sourcefile FROM pg_settings WHERE name = 'autovacuum'").fetchone()
        setting, source = row if row is not None else ("on", None)
        if mode != "keep":
            conn.execute(f"ALTER SYSTEM SET autovacuum = {mode}")
            conn.execute("SELECT pg_reload_conf()")

    def restore() -> None:
        if mode == "keep":
            return
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            if source and source.endswith("postgresql.auto.conf"):
                conn.execute(f"ALTER SYSTEM SET autovacuum = {setting}")
            else:
                conn.execute("ALTER SYSTEM RESET autovacuum")
            conn.execute("SELECT pg_reload_conf()")
        print(f"autovacuum put back to {setting}")

    return restore


def scale_run(args: argparse.Namespace, *, admin_url: str) -> dict[str, Any]:
    from django.conf import settings
    from django.core.management import call_command

    from billing.models import Plan
    from tenants.schema_script import schema_script_current
    from tenants.schema_template import template_schema_sync

    print(f"Setting up {args.database} (public schema, template schema)…", flush=True)
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    template_schema_sync()
    plan = Plan.objects.get(slug="free")
    replayed = schema_script_current(settings.TENANT_BASE_SCHEMA) is not None
    with psycopg.connect(admin_url, autocommit=True) as conn:
        shown = conn.execute("SHOW autovacuum").fetchone()
        autovacuum = shown[0] if shown is not None else "unknown"
    result: dict[str, Any] = {"autovacuum": autovacuum, "password_hash_seconds": password_hash_seconds(),
                              "schema_creation": "replayed (pg_dump's SQL)" if replayed else "cloned (clone_schema)",
                              "checkpoints": [], "fill": []}  # fmt: skip
    print(f"autovacuum {autovacuum}; checkpoints {checkpoints_of(args)}; one password hash "
          f"{result['password_hash_seconds']:.2f} s (not counted)", flush=True)  # fmt: skip
    made, started = existing_organisations() if args.resume else 0, time.perf_counter()
    with ThreadPoolExecutor(args.fill_workers, thread_name_prefix="fill") as pool:
        for checkpoint in checkpoints_of(args):
            if checkpoint < made and checkpoint != args.count:
                continue  # a resumed run: measured by the run that stopped
            while made < checkpoint:
                batch = range(made + 1, min(made + args.every, checkpoint) + 1)
                window = list(pool.map(partial(fill_one, plan=plan), batch))
                made = batch[-1]
                elapsed = time.perf_counter() - started
                result["fill"].append({"organisations": made, "p50": statistics.median(window), "max": max(window)})
                print(f"{made:6d}  last {len(window)}: p50 {statistics.median(window):5.2f} s  "
                      f"max {max(window):5.2f} s  elapsed {elapsed:6.0f} s", flush=True)  # fmt: skip
                if args.max_seconds is not None and elapsed > args.max_seconds:
                    print(f"--max-seconds reached at {made} organisations: measuring there and stopping.")
                    result["checkpoints"].append(checkpoint_measure(args, made, plan))
                    result["stopped_early"] = made
                    return result
            result["checkpoints"].append(checkpoint_measure(args, made, plan))
            made += args.sample
    return result


def existing_organisations() -> int:
    from tenants.models import Organisation

    return Organisation.objects.exclude(schema_name="public").count()


def fill_one(index: int, *, plan: Any) -> float:
    """One organisation made as fast as the clone allows, on this worker thread's own connection."""
    from django.db import connections

    try:
        seconds, _ = signup_once(index, plan=plan, clone="installed", discard=False)
    finally:
        connections.close_all()
    return seconds


def checkpoint_measure(args: argparse.Namespace, made: int, plan: Any) -> dict[str, Any]:
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import User
    from tenants.services.organisations import organisation_create

    seconds = []
    for n in range(args.sample):
        slug = f"sample-{made}-{n}"
        owner = User.objects.create_user(email=f"owner@{slug}.example")
        started = time.perf_counter()
        organisation_create(name=f"Sample {made} {n}", slug=slug, owner=owner, plan=plan)
        seconds.append(time.perf_counter() - started)
    with connection.cursor() as cursor:
        cursor.execute(CATALOG_SQL)
        database_bytes, catalog_bytes, classes, namespaces = cursor.fetchone()
    capture = capture_seconds()
    measured: dict[str, Any] = {
        "organisations": made,
        "signup_p50": statistics.median(seconds),
        "signup_p90": statistics.quantiles(seconds, n=10, method="inclusive")[-1] if len(seconds) > 1 else seconds[0],
        "signup_max": max(seconds),
        "signup_under_1s": sum(s < 1 for s in seconds),
        "sample": len(seconds),
        "database_mb": database_bytes / 2**20,
        "catalog_mb": int(catalog_bytes or 0) / 2**20,
        "pg_class_rows": classes,
        "schemas": namespaces,
        "capture_seconds": capture,
    }
    if made >= args.migrate_from:
        started = time.perf_counter()
        call_command("migrate_schemas", tenant=True, executor="multiprocessing", interactive=False, verbosity=0)
        measured["migrate_schemas_seconds"] = time.perf_counter() - started
        connection.close()  # the executor closed it under us; the next checkpoint opens a new one
    print(f"checkpoint {made:6d}: sign-up p50 {measured['signup_p50']:.2f} s, p90 {measured['signup_p90']:.2f} s, "
          f"max {measured['signup_max']:.2f} s ({measured['signup_under_1s']}/{len(seconds)} under 1 s); "
          f"database {measured['database_mb']:.0f} MB, pg_catalog {measured['catalog_mb']:.0f} MB, "
          f"{classes} relations; pg_dump capture {_seconds(capture)}; "
          f"migrate_schemas {measured.get('migrate_schemas_seconds', 0):.0f} s",
          flush=True)  # fmt: skip
    return measured


def capture_seconds() -> float | None:
    """Seconds for pg_dump to write the template's SQL again (what a deploy's bootstrap pays at this size); None
    without a working pg_dump (sign-up then clones)."""
    from django.conf import settings

    from tenants.schema_script import ScriptError, schema_script_capture, template_fingerprint

    template = settings.TENANT_BASE_SCHEMA
    started = time.perf_counter()
    try:
        schema_script_capture(template, template_fingerprint(template))
    except ScriptError:
        return None
    return time.perf_counter() - started


def password_hash_seconds() -> float:
    from django.contrib.auth.hashers import make_password

    started = time.perf_counter()
    make_password("a sign-up's password")
    return time.perf_counter() - started


def summary_print(result: dict[str, Any]) -> None:
    print(f"\nautovacuum {result['autovacuum']}; password hashing {result['password_hash_seconds']:.2f} s per sign-up "
          "(not counted below)")  # fmt: skip
    print(f"new schemas: {result['schema_creation']}")
    print("organisations  sign-up p50/p90/max (s)  under 1 s  database MB  pg_catalog MB  relations  migrate_schemas s"
          "  pg_dump s")  # fmt: skip
    for c in result["checkpoints"]:
        migrate = f"{c['migrate_schemas_seconds']:.0f}" if "migrate_schemas_seconds" in c else "-"
        print(f"{c['organisations']:13d}  {c['signup_p50']:.2f}/{c['signup_p90']:.2f}/{c['signup_max']:.2f}"
              f"{'':10s}{c['signup_under_1s']:3d}/{c['sample']:<3d}  {c['database_mb']:11.0f}  {c['catalog_mb']:13.0f}"
              f"  {c['pg_class_rows']:9d}  {migrate:>17s}  {_seconds(c['capture_seconds']):>9s}")  # fmt: skip


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    raise SystemExit(main())
