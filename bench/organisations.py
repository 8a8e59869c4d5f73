"""`python -m bench.organisations --count 500`: organisations signed up in a row, seconds each, catalog dead rows.

Each sign-up is an owner plus organisation_create's steps (tenants/services/organisations.py), with the two things
measured as switches: `--clone installed` (Organisation.create_schema: the clone function installed
once, pg_namespace's statistics kept current) or `per-clone` (django-tenants' TenantMixin.create_schema,
which re-creates the function every time and leaves the statistics as they are), and
`--connection discard` (a new PostgreSQL backend after each sign-up, as organisation_create once did) or `keep` (one
PostgreSQL backend for the whole run). It runs in a database of its own (`td_orgbench`), created at
the start and dropped at the end, never the development database.

pg_shdepend is shared by every database of the server: its counts include other databases' work.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

DEFAULT_DATABASE_URL = "postgres://root@127.0.0.1:5432/tickerdeck"
BENCH_DATABASE = "td_orgbench"
# Written on the bench's database: only a database carrying it is dropped when left by a killed run.
BENCH_MARK = "bench.organisations scratch database"
CATALOGS = ("pg_enum", "pg_proc", "pg_proc TOAST", "pg_shdepend", "pg_type")
DEAD_ROWS_SQL = """
SELECT CASE WHEN s.relid = 'pg_proc'::regclass::oid THEN 'pg_proc'
            WHEN s.relid = 'pg_enum'::regclass::oid THEN 'pg_enum'
            WHEN s.relid = 'pg_shdepend'::regclass::oid THEN 'pg_shdepend'
            WHEN s.relid = 'pg_type'::regclass::oid THEN 'pg_type'
            ELSE 'pg_proc TOAST' END,
       s.n_dead_tup
FROM pg_stat_sys_tables s
WHERE s.relid IN ('pg_enum'::regclass, 'pg_proc'::regclass, 'pg_shdepend'::regclass, 'pg_type'::regclass,
                  (SELECT reltoastrelid FROM pg_class WHERE oid = 'pg_proc'::regclass))
"""


@dataclass
class Run:
    """What one run measured: seconds per sign-up, and catalog dead rows before and after."""

    seconds: list[float] = field(default_factory=list)
    dead_before: dict[str, int] = field(default_factory=dict)
    dead_after: dict[str, int] = field(default_factory=dict)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.organisations", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="organisations to create (default 500)")
    parser.add_argument(
        "--clone", choices=("installed", "per-clone"), default="installed",
        help="installed once (default), or re-created per clone as django-tenants does",
    )  # fmt: skip
    parser.add_argument(
        "--connection", choices=("discard", "keep"), default="discard",
        help="discard it after each sign-up as organisation_create does (default), or keep one for the run",
    )  # fmt: skip
    parser.add_argument("--max-seconds", type=float, default=None, help="stop early once this much time has passed")
    parser.add_argument("--every", type=int, default=50, help="progress line every N organisations (default 50)")
    parser.add_argument("--database", default=BENCH_DATABASE, help=f"scratch database name (default {BENCH_DATABASE})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    with scratch_database(args.database):
        run = organisations_run(args, monitor_url=os.environ["DATABASE_URL"])
    summary_print(args, run)
    return 0


@contextmanager
def scratch_database(name: str, *, resume: bool = False, keep: bool = False) -> Iterator[str]:
    """Django set up on a scratch database `name` of DATABASE_URL's server, dropped at the end (also
    after an error); yields the server's admin URL. DATABASE_URL's own database is refused. `resume`
    goes on with the scratch database a stopped run left, when there is one; `keep` leaves it at the end
    (for a later `resume`)."""
    base_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    if name == urlsplit(base_url).path.lstrip("/"):
        print(f"Refusing to use {name}: it is DATABASE_URL's database, not a scratch one.", file=sys.stderr)
        raise SystemExit(2)
    admin_url = urlunsplit(urlsplit(base_url)._replace(path="/postgres"))
    database_create(admin_url, name, keep=resume)
    try:
        _django_setup(urlunsplit(urlsplit(base_url)._replace(path="/" + name)))
        yield admin_url
    finally:
        from django.db import connections

        connections.close_all()
        if keep:
            print(f"Kept the scratch database {name} (drop it with: dropdb {name}).", flush=True)
        else:
            database_drop(admin_url, name)


def database_create(admin_url: str, name: str, mark: str = BENCH_MARK, *, keep: bool = False) -> None:
    """Create the scratch database (dropping one a killed run left, recognised by its comment `mark`,
    unless `keep`: then that one is used as it is)."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           [name]).fetchone()  # fmt: skip
        if row is not None:
            if row[0] != mark:
                raise SystemExit(f"Database {name} exists and is not this bench's scratch database: not touching it.")
            if keep:
                print(f"Going on with the scratch database {name} a stopped run left.", flush=True)
                return
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{mark}'")


def database_drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _django_setup(database_url: str) -> None:
    # Development settings (production's want mail and other secrets this never uses), without
    # DEBUG's query log, and without a pool: `keep` then really is one backend, `discard` a new one
    # per sign-up.
    os.environ["DATABASE_URL"] = database_url
    os.environ["DATABASE_POOL"] = "false"
    os.environ["DEBUG"] = "false"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.dev"
    import django

    django.setup()


def organisations_run(args: argparse.Namespace, *, monitor_url: str) -> Run:
    """Migrate the scratch database, then sign up `count` organisations in a row, timing each."""
    from django.core.management import call_command

    from billing.models import Plan
    from tenants.schema_template import template_schema_sync

    print(f"Setting up {args.database} (public schema, template schema)…", flush=True)
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    template_schema_sync()
    plan = Plan.objects.get(slug="free")
    run = Run()
    with psycopg.connect(monitor_url, autocommit=True, connect_timeout=5) as monitor:
        run.dead_before = dead_rows(monitor)
        print(f"clone: {args.clone}, connection: {args.connection}; dead rows {_dead_text(run.dead_before)}")
        discard = args.connection == "discard"
        started = time.perf_counter()
        for index in range(1, args.count + 1):
            seconds, backend_bytes = signup_once(index, plan=plan, clone=args.clone, discard=discard)
            run.seconds.append(seconds)
            elapsed = time.perf_counter() - started
            out_of_time = args.max_seconds is not None and elapsed >= args.max_seconds
            if index % args.every == 0 or index in (1, args.count) or out_of_time:
                window = run.seconds[-args.every :] if index > 1 else run.seconds
                line = (
                    f"{index:5d}  last {len(window)}: p50 {statistics.median(window):6.2f} s  max {max(window):6.2f} s"
                    f"  backend {backend_bytes / 2**20:6.1f} MB  elapsed {elapsed:6.0f} s"
                    f"  dead rows {_dead_text(dead_rows(monitor))}"
                )
                print(line, flush=True)
            if out_of_time:
                print(f"Stopped after {index} organisations: --max-seconds {args.max_seconds:.0f} reached.")
                break
        from django.db import connections

        connections.close_all()  # a backend's pending statistics are written when it exits
        time.sleep(1.0)
        run.dead_after = dead_rows(monitor)
    return run


def signup_once(index: int, *, plan: Any, clone: str, discard: bool) -> tuple[float, int]:
    """Seconds for one owner + organisation (+ discard), and the PostgreSQL backend's memory after the clone.

    The owner has no usable password: hashing one (PBKDF2, ~0.5 s) is not what is measured.
    """
    from django.conf import settings
    from django.db import connection, transaction
    from django_tenants.models import TenantMixin

    from accounts.models import User
    from tenants.db import activate_public_schema
    from tenants.models import Domain, Membership, Organisation, Role
    from tenants.validators import schema_name_for

    slug = f"bench-{index}"
    started = time.perf_counter()
    owner = User.objects.create_user(email=f"owner@{slug}.example")
    with transaction.atomic():
        organisation = Organisation(name=f"Bench {index}", slug=slug, schema_name=schema_name_for(slug), plan=plan)
        organisation.auto_create_schema = False
        organisation.save()
        if clone == "installed":
            organisation.create_schema(check_if_exists=True, verbosity=0)
        else:  # django-tenants' own, which drops and re-creates the clone functions and types
            TenantMixin.create_schema(organisation, check_if_exists=True, verbosity=0)
        Domain.objects.create(domain=f"{slug}.{settings.BASE_DOMAIN}", tenant=organisation, is_primary=True)
        Membership.objects.create(user=owner, organisation=organisation, role=Role.OWNER)
    activate_public_schema()
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:  # ~1 ms, not counted
        cursor.execute("SELECT sum(total_bytes) FROM pg_backend_memory_contexts")
        backend_bytes = int(cursor.fetchone()[0])
        cursor.execute("SELECT pg_stat_force_next_flush()")  # so the monitor sees this backend's rows
    if discard:
        started_discard = time.perf_counter()
        raw = connection.connection  # closed, so the pool drops it instead of lending it again
        if raw is not None:
            raw.close()
        connection.close()
        seconds += time.perf_counter() - started_discard
    return seconds, backend_bytes


def dead_rows(monitor: psycopg.Connection[Any]) -> dict[str, int]:
    """n_dead_tup of the catalogs that a clone-function install churns."""
    time.sleep(0.05)  # a backend writes its statistics when it goes idle or exits
    monitor.execute("SELECT pg_stat_clear_snapshot()")
    return {name: int(dead) for name, dead in monitor.execute(DEAD_ROWS_SQL).fetchall()}


def summary_print(args: argparse.Namespace, run: Run) -> None:
    seconds = run.seconds
    print()
    print(f"Summary: {len(seconds)} organisations, clone {args.clone}, connection {args.connection}")
    under = sum(s < 1 for s in seconds)
    print(f"  seconds per sign-up: p50 {statistics.median(seconds):.2f}  max {max(seconds):.2f}"
          f"  first {seconds[0]:.2f}  last {seconds[-1]:.2f}  under 1 s: {under}/{len(seconds)}")  # fmt: skip
    print("  dead rows      before     after     delta")
    for name in CATALOGS:
        before, after = run.dead_before.get(name, 0), run.dead_after.get(name, 0)
        print(f"  {name:13s} {before:7d} {after:9d} {after - before:9d}")


def _dead_text(dead: dict[str, int]) -> str:
    return " ".join(f"{name.replace(' ', '_')}={dead.get(name, 0)}" for name in CATALOGS)


if __name__ == "__main__":
    raise SystemExit(main())
