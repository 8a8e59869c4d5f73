"""Where the bench runs: PostgreSQL and Redis (found as `make run` finds them), its own database.

The bench writes organisations into a database of its own (`tickerdeck_bench`, set up with
`manage.py bootstrap`) so it never touches development data, unless given `--database-url`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil

from bench.organisations import database_create, database_drop
from bench.processes import PYTHON, ROOT

BENCH_DATABASE = "tickerdeck_bench"
BOOTSTRAP_SECONDS = 600


@dataclass(frozen=True)
class Scratch:
    """A database made for one run and dropped after it; `mark` (its comment) lets a later run drop one a
    killed run left, and nothing else."""

    name: str
    mark: str


def services_find(
    database_url: str | None, redis_url: str | None, *, scratch: Scratch | None = None
) -> tuple[str, str, Any]:
    """(database URL, Redis URL, handles to keep alive while they are used).

    Without `database_url`: the bench's database on the server found, or with `scratch` a database of
    that name created afresh (the caller drops it: `scratch_drop`)."""
    if redis_url is not None:
        os.environ["REDIS_URL"] = redis_url
    if database_url is not None:
        os.environ["DATABASE_URL"] = database_url
    # devtools creates its database when it starts a local server: let that be the bench's (a scratch
    # database is made apart, with its mark, so devtools then only needs the server's own).
    os.environ.setdefault("DATABASE_NAME", "postgres" if scratch else BENCH_DATABASE)
    from devtools.servers import ensure_services

    services = ensure_services()
    if not services.redis_url:
        raise RuntimeError(f"The bench needs Redis (several processes share it): {services.redis_source}.")
    url = services.database_url
    if database_url is None:
        url = urlunsplit(urlsplit(url)._replace(path="/" + (scratch.name if scratch else BENCH_DATABASE)))
        if scratch:
            database_create(_admin_url(url), scratch.name, scratch.mark)
        else:
            database_create_if_missing(url)
    return url, services.redis_url, services


def scratch_drop(database_url: str) -> None:
    from django.db import connections

    connections.close_all()
    database_drop(_admin_url(database_url), urlsplit(database_url).path.lstrip("/"))


def _admin_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def database_create_if_missing(url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(_admin_url(url), autocommit=True, connect_timeout=5) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def bootstrap(env: dict[str, str], log_path: Path) -> None:
    """`manage.py bootstrap` (migrations, template schema, plans, symbol directory; idempotent)."""
    with log_path.open("w") as log:
        result = subprocess.run([PYTHON, "manage.py", "bootstrap"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, timeout=BOOTSTRAP_SECONDS, check=False)  # fmt: skip
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-20:])
        raise RuntimeError(f"manage.py bootstrap failed (code {result.returncode}):\n{tail}")


def redis_process(redis_url: str) -> psutil.Process | None:
    """The Redis server's process when it runs on this machine (its CPU is reported apart)."""
    import redis

    with contextlib.suppress(redis.RedisError, psutil.Error, KeyError, ValueError):
        with redis.Redis.from_url(redis_url, socket_timeout=5) as client:
            pid = int(client.info("server")["process_id"])
        process = psutil.Process(pid)
        if "redis" in process.name():
            return process
    return None


def redis_keys_remove(redis_url: str, prefix: str) -> int:
    """Delete every key of this run's namespace (stream state, channel-layer queues and groups)."""
    import redis

    with redis.Redis.from_url(redis_url, socket_timeout=10) as client:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    return len(keys)
