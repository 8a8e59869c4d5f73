"""What every bench command starts with: signals that stop it cleanly, this run's services and namespace,
Django, the database, and the tick publisher and load client (`python -m bench`, `python -m bench.alert_scale`)."""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Callable
from contextlib import ExitStack
from types import FrameType

from bench import environment
from bench.config import Config
from bench.processes import ROOT, Controlled, python_module
from bench.report import Results
from bench.runner import Harness
from bench.systems import Context


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Further signals are ignored: the clean-up that follows has bounded waits of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def interrupt_on_signals() -> None:
    """SIGTERM and Ctrl-C end the run through its clean-up (KeyboardInterrupt), once."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)


def run_stopping_everything(run: Callable[[ExitStack], None], note: Callable[[str], None], stopping: str) -> None:
    """`run(stack)`, then whatever it put on the stack (processes, organisations, Redis keys) stopped or
    removed, in reverse order, also when it fails. Ctrl-C and SIGTERM end it through that clean-up and
    are noted (`note`) as partial results; other errors propagate once it is done."""
    interrupt_on_signals()
    try:
        with ExitStack() as stack:
            run(stack)
            print(f"\n{stopping}", flush=True)
    except KeyboardInterrupt:
        note("interrupted: the results are partial")


def django_setup(context: Context, *, production_limits: bool = False) -> None:
    """This process's Django: the product's settings and environment (bench.setup_settings)."""
    from bench.systems.tickerdeck import product_environment

    product = product_environment(context, production_limits=production_limits)
    os.environ.update({**product, "DJANGO_SETTINGS_MODULE": "bench.setup_settings"})
    import django

    django.setup()


def context_start(
    *,
    label: str,
    database_url: str | None,
    redis_url: str | None,
    skip_bootstrap: bool,
    stack: ExitStack,
    scratch: environment.Scratch | None = None,
    production_limits: bool = False,
) -> Context:
    """PostgreSQL and Redis as `make run` finds them, this run's Redis namespace (removed at the end),
    its log folder `artifacts/bench/<label><run id>/`, Django set up and the database bootstrapped.

    `scratch`: without `database_url`, a database of its own, dropped at the end. `production_limits`:
    the per-address rate limits of production (or of the environment) instead of the bench's raised ones.
    """  # fmt: skip
    run_id = secrets.token_hex(4)
    log_dir = ROOT / "artifacts" / "bench" / f"{label}{run_id}"
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"Run {run_id}: logs in {log_dir.relative_to(ROOT)}")
    database, redis, services = environment.services_find(database_url, redis_url, scratch=scratch)
    stack.callback(lambda: services)  # keeps embedded servers alive until the end
    if scratch is not None and database_url is None:
        stack.callback(environment.scratch_drop, database)
    prefix = f"bench:{run_id}:"
    context = Context(run_id, redis, database, prefix + "ticks", prefix, log_dir, secrets.token_urlsafe(50))
    stack.callback(lambda: print(f"  removed {environment.redis_keys_remove(redis, prefix)} Redis keys"))
    django_setup(context, production_limits=production_limits)
    if not skip_bootstrap:
        print("Setting up the bench database (manage.py bootstrap)…", flush=True)
        product = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.prod")
        environment.bootstrap(product, log_dir / "bootstrap.log")
    return context


def harness_start(config: Config, context: Context, symbols: list[str], results: Results, stack: ExitStack) -> Harness:
    """The tick publisher (over these symbols) and the load client, each a process stopped with the run."""
    env = dict(os.environ)
    publish = python_module("bench.publisher", "--redis-url", context.redis_url, "--channel", context.channel,
                            "--symbols", ",".join(symbols), "--seed", str(config.seed))  # fmt: skip
    publisher = Controlled("publisher", publish, env, context.log_dir).stopped_by(stack)
    client = Controlled("client", python_module("bench.client"), env, context.log_dir).stopped_by(stack)
    redis = environment.redis_process(context.redis_url)
    return Harness(config, context, client, publisher, redis, len(symbols), results)
