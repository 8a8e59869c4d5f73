"""`tickerdeck`: the product as deployed: `python -m config.server` and `manage.py run_feed`.

Production settings; the feed reads the publisher's channel through the `relay` provider. Each run
has its own Redis namespace (stream state and channel-layer prefix), apart from any other user.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from bench.processes import PYTHON, Child, free_port
from bench.systems import Context, Running, Target, stream_path
from bench.tenants import Organisations
from bench.workload import Stream

START_SECONDS = 60.0
LEADING = r"leads the feed"  # run_feed's log line once it holds the feed lock


def product_environment(context: Context, *, production_limits: bool = False) -> dict[str, str]:
    """The environment of every product process of this run (servers and the orchestrator's set-up).

    `production_limits`: the per-address rate limits as production has them (or as this environment
    sets them), not raised for the bench's one address."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "DATABASE_URL": context.database_url,
        "REDIS_URL": context.redis_url,
        "SECRET_KEY": context.secret_key,
        "EMAIL_URL": "consolemail://",  # required by production settings; the bench sends no mail
        "BASE_DOMAIN": "localhost",
        # Plain HTTP on loopback: production's HTTPS-only defaults would redirect or drop cookies.
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SECURE_SSL_REDIRECT": "false",
        "STREAM_REDIS_PREFIX": context.redis_prefix,
        "CHANNEL_LAYER_PREFIX": context.redis_prefix + "td",
        "MARKET_DATA_PROVIDER": "relay",
        "RELAY_CHANNEL": context.channel,
        "LOG_LEVEL": "INFO",
        # The bench opens thousands of connections and token requests from 127.0.0.1, one address:
        # the per-address limits are raised far above its rates (not turned off), so each connect and
        # token still pays the limiter's Redis call, as in production, and none is refused.
        "RATE_LIMIT_WS_CONNECTS": "100000 per 10 seconds",
        "RATE_LIMIT_WIDGET_TOKENS": "100000 per minute",
    }
    if production_limits:
        for name in ("RATE_LIMIT_WS_CONNECTS", "RATE_LIMIT_WIDGET_TOKENS"):
            env.pop(name)
            if name in os.environ:
                env[name] = os.environ[name]
    return env


class Tickerdeck:
    name: str = "tickerdeck"
    first_frame: str | None = "snapshot"

    def __init__(
        self, organisations: Organisations, *, production_limits: bool = False, settings: dict[str, str] | None = None
    ) -> None:
        self.organisations = organisations
        self.production_limits = production_limits  # see product_environment
        self.settings = settings or {}  # more environment for its processes (a provider, a token)

    @contextmanager
    def start(self, context: Context) -> Iterator[Running]:
        port = free_port()
        env = {**product_environment(context, production_limits=self.production_limits), **self.settings}
        # The server's own logging, as deployed (it leaves out uvicorn's line per handshake).
        server_command = [PYTHON, "-m", "config.server", "--host", "127.0.0.1", "--port", str(port)]
        with ExitStack() as stack:
            server = Child("tickerdeck-server", server_command, env, context.log_dir).stopped_by(stack)
            feed = Child("tickerdeck-feed", [PYTHON, "manage.py", "run_feed"], env, context.log_dir).stopped_by(stack)
            server.wait_for_http(port, timeout=START_SECONDS)
            feed.wait_for_log(LEADING, timeout=START_SECONDS)
            yield Running(port, [server, feed])

    def target(self, stream: Stream) -> Target:
        index = stream.organisation
        return Target(f"{self.organisations.slugs[index]}.localhost", stream_path(stream),
                      f"sessionid={self.organisations.sessions[index]}")  # fmt: skip
