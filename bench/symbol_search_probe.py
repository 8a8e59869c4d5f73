"""Symbol-search latency: random queries through the selector, then through the whole HTTP stack.

    DATABASE_URL=postgres://… .venv/bin/python bench/symbol_search_probe.py [--queries 200] [--seed 1]

DATABASE_URL's database must be set up (`manage.py bootstrap`, which loads the symbol directory).
The HTTP run goes through Django's test client on an organisation's host (host resolution, session,
membership check, view, JSON encoding). Its throwaway organisation and member are made inside a
transaction that is rolled back at the end, so nothing is left behind.

Queries: a quarter each of ticker prefixes (1-4 letters), company-name prefixes (2-8 letters,
lower case), fragments from inside company names (which take the name-scan tier), and random
letters that mostly match nothing (every tier runs: the slowest case). Reported: p50, p99 and max
in milliseconds, overall and per kind, and the full (generation 2) garbage collections of this
process that fell inside a timed query, since those pauses belong to the process, not the search.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import secrets
import statistics
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET_MS = 50.0


def queries(directory: list[tuple[str, str]], count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, query) pairs, in random order."""
    made: list[tuple[str, str]] = []
    for index in range(count):
        symbol, name = rng.choice(directory)
        kind = ("ticker", "name", "inside", "random")[index % 4]
        if kind == "ticker":
            query = symbol[: rng.randint(1, min(4, len(symbol)))]
        elif kind == "name":
            query = name[: rng.randint(2, min(8, len(name)))].lower()
        elif kind == "inside":
            start = rng.randint(0, max(len(name) - 3, 0))
            query = name[start : start + rng.randint(3, 5)]
        else:
            query = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(1, 4)))
        made.append((kind, query))
    rng.shuffle(made)
    return made


class FullCollections:
    """Durations (ms) of this process's generation-2 garbage collections, as they happen."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._started) * 1000)


def timed(
    run: Callable[[str], object], batch: list[tuple[str, str]], collections: FullCollections
) -> tuple[dict[str, list[float]], list[tuple[float, float]]]:
    """Milliseconds per query by kind, and (query ms, GC pause ms) for queries a full collection interrupted."""
    by_kind: dict[str, list[float]] = {}
    interrupted: list[tuple[float, float]] = []
    for kind, query in batch:
        pauses_before = len(collections.pauses)
        started = time.perf_counter()
        run(query)
        ms = (time.perf_counter() - started) * 1000
        by_kind.setdefault(kind, []).append(ms)
        if len(collections.pauses) > pauses_before:
            interrupted.append((ms, sum(collections.pauses[pauses_before:])))
    return by_kind, interrupted


def report(title: str, result: tuple[dict[str, list[float]], list[tuple[float, float]]]) -> None:
    by_kind, interrupted = result
    everything = [ms for values in by_kind.values() for ms in values]
    print(f"{title}: {len(everything)} queries")
    for label, values in [("all", everything), *sorted(by_kind.items())]:
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        print(f"  {label:<7} p50 {cuts[49]:6.2f} ms   p99 {cuts[98]:6.2f} ms   max {max(values):6.2f} ms")
    for ms, pause in interrupted:
        print(f"  a full GC of this process ({pause:.1f} ms) fell inside a {ms:.2f} ms query")
    verdict = "within" if max(everything) < BUDGET_MS else "OVER"
    print(f"  slowest {max(everything):.2f} ms: {verdict} the {BUDGET_MS:.0f} ms budget")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from django.db import transaction
    from django.test import Client

    from accounts.services import owner_get_or_create
    from billing.models import Plan
    from symbols.models import Symbol
    from symbols.selectors import symbol_search
    from tenants.services.organisations import organisation_create

    rng = random.Random(args.seed)
    directory = list(Symbol.objects.values_list("symbol", "name"))
    if not directory:
        sys.exit("The symbol directory is empty: run `manage.py bootstrap` (or `load_symbols`) first.")
    batch = queries(directory, args.queries, rng)
    print(f"Directory: {len(directory)} symbols; seed {args.seed}")

    collections = FullCollections()
    timed(lambda q: symbol_search(query=q), batch[:20], collections)  # warm the connection up
    report("selector (symbols.selectors.symbol_search)", timed(lambda q: symbol_search(query=q), batch, collections))

    with transaction.atomic():
        slug = f"bench{rng.randrange(10**6):06d}"
        owner = owner_get_or_create(email=f"owner@{slug}.example", password=secrets.token_urlsafe(16))
        organisation_create(name="Bench", slug=slug, owner=owner, plan=Plan.objects.get(slug="pro"))
        client = Client(HTTP_HOST=f"{slug}.localhost")
        client.force_login(owner)

        def over_http(query: str) -> None:
            response = client.get("/symbols/search/", {"q": query})
            if response.status_code != 200:
                raise RuntimeError(f"GET /symbols/search/?q={query} answered {response.status_code}")

        timed(over_http, batch[:20], collections)
        report(
            "HTTP GET /symbols/search/ on a tenant host (middleware, session, membership, view)",
            timed(over_http, batch, collections),
        )
        transaction.set_rollback(True)


if __name__ == "__main__":
    main()
