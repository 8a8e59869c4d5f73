"""`python -m devtools run|cluster|test|services`: the engines of `make run`, `make cluster` and `make test`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from config.workers import processes_stop

from . import cluster as topology
from .servers import ROOT, Services, ensure_services

logger = logging.getLogger("devtools")
PYTHON = sys.executable
SHUTDOWN_GRACE_SECONDS = 10


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["test"]:  # everything after `test` goes to pytest untouched
        return test_suite(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m devtools")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="set up and serve with the simulated feed")
    sub.add_parser("cluster", help="nginx in front of two web processes and two feeds (CLUSTER_PORT, default 8080)")
    sub.add_parser("test", help="set up and run the test suite (further arguments go to pytest)")
    sub.add_parser("services", help="print the service URLs that would be used")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run()
    if args.command == "cluster":
        return cluster()
    services = ensure_services()
    print(f"DATABASE_URL={services.database_url}  # {services.database_source}")
    print(f"REDIS_URL={services.redis_url}  # {services.redis_source}")
    return 0


def _environment(services: Services, settings_module: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(services.env())
    # Named, not defaulted: manage.py and config.asgi fall back to production settings, and a shell
    # that exports production's must not turn `make run` or `make test` into a production process.
    exported = env.get("DJANGO_SETTINGS_MODULE")
    if exported and exported != settings_module:
        logger.info("Ignoring DJANGO_SETTINGS_MODULE=%s from the environment: using %s.", exported, settings_module)
    env["DJANGO_SETTINGS_MODULE"] = settings_module
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def run() -> int:
    port = int(os.environ.get("PORT", "8000"))
    host = os.environ.get("HOST", "127.0.0.1")
    if _port_in_use(host, port):
        logger.error(
            "Port %d on %s is already in use (is another `make run` still running?). "
            "Stop it, or choose another port: PORT=%d make run",
            port, host, port + 1,
        )  # fmt: skip
        return 1
    services = ensure_services()
    logger.info("PostgreSQL: %s\nRedis: %s", services.database_source, services.redis_source)
    env = _environment(services, "config.settings.dev")
    env["PORT"] = str(port)
    if not _bootstrap(env):
        return 1
    # One web process per core (config.workers), which needs Redis to share the stream leases.
    workers = [] if services.redis_url else ["--workers", "1"]
    commands = [[PYTHON, "-m", "config.server", "--host", host, "--port", str(port), *workers]]
    if services.redis_url and _has_command(env, "run_feed"):
        commands.append(topology.feed_command())
    children = [subprocess.Popen(command, env=env, cwd=ROOT) for command in commands]
    logger.info(
        "\nTickerdeck is serving at http://%s:%d/ (Ctrl-C stops everything)\n",
        env.get("BASE_DOMAIN", "localhost"),
        port,
    )
    return _supervise(children)


def cluster() -> int:
    """nginx on CLUSTER_PORT in front of two web processes and two feeds, sharing PostgreSQL and Redis."""
    plan = topology.Topology.from_port(int(os.environ.get("CLUSTER_PORT", "8080")))
    busy = [port for port in (plan.port, *plan.web_ports) if _port_in_use("127.0.0.1", port)]
    if busy:
        logger.error("Port(s) %s in use on 127.0.0.1: stop what holds them, or set CLUSTER_PORT "
                     "(the web processes take the two ports after it).", ", ".join(map(str, busy)))  # fmt: skip
        return 1
    try:
        nginx = topology.nginx_prepare(plan)
    except topology.ClusterError as exc:
        logger.error("%s", exc)
        return 1
    services = ensure_services()
    if not services.redis_url:
        logger.error("A cluster needs Redis (its processes share quotes, leases and the feed lock); none was found.")
        return 1
    logger.info("PostgreSQL: %s\nRedis: %s", services.database_source, services.redis_source)
    env = {**_environment(services, "config.settings.dev"), **topology.behind_proxy_environment()}
    if not _bootstrap(env):
        return 1
    commands = [
        *(topology.web_command(port) for port in plan.web_ports),
        topology.feed_command(),
        topology.feed_command(),
        topology.nginx_command(nginx),
    ]
    children = [subprocess.Popen(command, env=env, cwd=ROOT) for command in commands]
    logger.info(
        "\nTickerdeck cluster: http://%s:%d/ through nginx to web processes on ports %s, two feeds "
        "(one leads, one stands by). Ctrl-C stops everything.\n",
        env.get("BASE_DOMAIN", "localhost"), plan.port, " and ".join(map(str, plan.web_ports)),
    )  # fmt: skip
    return _supervise(children)


def _bootstrap(env: dict[str, str]) -> bool:
    command = [PYTHON, str(ROOT / "manage.py"), "bootstrap", "--demo"]
    if subprocess.run(command, env=env, cwd=ROOT, check=False).returncode != 0:
        logger.error("Setting up the database failed; see the messages above.")
        return False
    return True


def _has_command(env: dict[str, str], name: str) -> bool:
    return (ROOT / "streaming" / "management" / "commands" / f"{name}.py").exists()


def _supervise(children: list[subprocess.Popen[bytes]]) -> int:
    """Wait until a child exits or we are told to stop; then stop every child."""
    stopping = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    exit_code = 0
    while not stopping:
        exited = [child for child in children if child.poll() is not None]
        if exited:
            exit_code = exited[0].returncode or 1
            logger.error("A process exited (code %s): stopping the others.", exit_code)
            break
        time.sleep(0.3)
    processes_stop(children, SHUTDOWN_GRACE_SECONDS)
    logger.info("Stopped.")
    return exit_code


def test_suite(pytest_args: list[str]) -> int:
    services = ensure_services()
    logger.info("PostgreSQL: %s\nRedis: %s", services.database_source, services.redis_source)
    env = _environment(services, "config.settings.test")
    return subprocess.run([PYTHON, "-m", "pytest", *pytest_args], env=env, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
