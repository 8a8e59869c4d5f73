"""`make cluster`: docker/compose.yaml's topology on one machine, on loopback.

nginx (Debian's package) on CLUSTER_PORT (default 8080) in front of two web processes (the next two
ports), two feeds (one leads, the other stands by) and the PostgreSQL and Redis of `make run`. The
proxy's configuration is docker/nginx.conf itself, with the containers' addresses replaced by
loopback ports, so what is tried here is what the compose file deploys.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .servers import DATA_DIR, ROOT

NGINX_SITE = ROOT / "docker" / "nginx.conf"
NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx")
UPSTREAM_SERVER = re.compile(r"^(\s*)server web-\d+:8000 (.*);$", re.MULTILINE)
LISTEN = re.compile(r"^(\s*)listen 80 default_server;$", re.MULTILINE)

# The main configuration around docker/nginx.conf's site (Debian's /etc/nginx/nginx.conf is not
# used: it wants root, and writes under /var).
NGINX_MAIN = """\
# Written by `make cluster` (devtools/cluster.py); the site below is docker/nginx.conf on loopback.
worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/site.conf;
}}
"""


class ClusterError(RuntimeError):
    """The cluster cannot start as configured (said to the operator as it is)."""


@dataclass(frozen=True)
class Topology:
    """Where each part listens: the proxy on `port`, the web processes on `web_ports`."""

    port: int
    web_ports: tuple[int, ...]

    @classmethod
    def from_port(cls, port: int, webs: int = 2) -> Topology:
        return cls(port, tuple(port + 1 + n for n in range(webs)))


def nginx_binary() -> str:
    for candidate in NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise ClusterError("nginx is not installed: `make cluster` installs Debian's nginx-light (apt-get, as root).")


def nginx_site(topology: Topology, site: str | None = None) -> str:
    """docker/nginx.conf with the web processes on loopback ports and the proxy on `topology.port`."""
    text = NGINX_SITE.read_text() if site is None else site
    upstream = UPSTREAM_SERVER.findall(text)
    if len(upstream) != len(topology.web_ports) or not LISTEN.search(text):
        raise ClusterError(
            f"{NGINX_SITE} no longer has the lines `make cluster` rewrites "
            f"({len(upstream)} `server web-N:8000 …;` lines for {len(topology.web_ports)} web processes, "
            "and `listen 80 default_server;`)"
        )
    ports = iter(topology.web_ports)
    text = UPSTREAM_SERVER.sub(lambda m: f"{m.group(1)}server 127.0.0.1:{next(ports)} {m.group(2)};", text)
    return LISTEN.sub(rf"\g<1>listen 127.0.0.1:{topology.port} default_server;", text)


def nginx_prepare(topology: Topology, prefix: Path = DATA_DIR / "cluster") -> Path:
    """Write the proxy's configuration under `prefix`; returns the main file (checked with `nginx -t`)."""
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "site.conf").write_text(nginx_site(topology))
    main = prefix / "nginx.conf"
    main.write_text(NGINX_MAIN.format(prefix=prefix))
    checked = subprocess.run(
        [nginx_binary(), "-t", "-q", "-p", str(prefix), "-c", str(main)], capture_output=True, text=True, check=False
    )
    if checked.returncode != 0:
        raise ClusterError(f"nginx refuses the configuration {main}:\n{checked.stderr.strip()}")
    return main


def nginx_command(main: Path) -> list[str]:
    return [nginx_binary(), "-p", str(main.parent), "-c", str(main), "-g", "daemon off;"]


def web_command(port: int) -> list[str]:
    return [sys.executable, "-m", "config.server", "--host", "127.0.0.1", "--port", str(port)]


def feed_command() -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), "run_feed"]


def behind_proxy_environment() -> dict[str, str]:
    """What the web processes need to know about the proxy in front of them (README: "Proxy")."""
    return {"TRUSTED_PROXY_COUNT": "1", "FORWARDED_ALLOW_IPS": "127.0.0.1"}
