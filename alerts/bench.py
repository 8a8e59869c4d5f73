"""`python -m alerts.bench`: the engine's index under load, on its own (no database, no Redis).

Builds 100,000 alerts over 1,000 organisations on 500 symbols (a few symbols carry most alerts, as
in real use: symbol popularity follows a Zipf law), levels and thresholds spread around each
symbol's price, then plays random-walk quotes through `AlertIndex.evaluate` in publish-window
batches, as the feed leader does, and prints the time per quote (median and 99th percentile of
batches), what fired, and how long rebuilding one organisation takes (what an edit costs).
"""

import argparse
import itertools
import random
import statistics
import time
import tracemalloc
from dataclasses import dataclass

from .index import AlertIndex, Kind, Rule


@dataclass(frozen=True, slots=True)
class BenchQuote:
    symbol: str
    price: float
    change_pct: float
    ts: int


def build(*, alerts: int, organisations: int, symbols: int, seed: int) -> tuple[AlertIndex, dict[str, float]]:
    draw = random.Random(seed)  # noqa: S311 (bench data)
    names = [f"S{n:04d}" for n in range(symbols)]
    prices = {name: round(draw.uniform(10, 500), 2) for name in names}
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(symbols)))
    per_org: dict[str, list[Rule]] = {f"org_{n:04d}": [] for n in range(organisations)}
    schemas = list(per_org)
    kinds = list(Kind)
    for alert_id in range(1, alerts + 1):
        schema = schemas[alert_id % organisations]
        symbol = draw.choices(names, cum_weights=cumulative)[0]
        kind = draw.choice(kinds)
        if kind in (Kind.PRICE_ABOVE, Kind.PRICE_BELOW):
            level = round(prices[symbol] * draw.uniform(0.9, 1.1), 2)
        else:
            level = round(draw.uniform(1, 8) * (1 if kind is Kind.CHANGE_ABOVE else -1), 1)
        per_org[schema].append(Rule(schema, alert_id, symbol, kind, level, 900_000))
    index = AlertIndex()
    for schema, rules in per_org.items():
        index.schema_replace(schema, 0, rules)
    return index, prices


def play(index: AlertIndex, prices: dict[str, float], *, quotes: int, batch: int, seed: int) -> tuple[list[float], int]:
    """Seconds per quote of each batch, and how many alerts fired."""
    draw = random.Random(seed + 1)  # noqa: S311
    names = list(prices)
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(names))))
    opens = dict(prices)
    per_quote: list[float] = []
    fired = 0
    ts = 0
    for _ in range(quotes // batch):
        ts += 10
        chosen = set(draw.choices(names, cum_weights=cumulative, k=batch))
        window = {}
        for symbol in sorted(chosen):  # (set order varies with the hash seed)
            prices[symbol] = round(prices[symbol] * (1 + draw.gauss(0, 0.0005)), 2)
            change = round((prices[symbol] - opens[symbol]) / opens[symbol] * 100, 2)
            window[symbol] = BenchQuote(symbol, prices[symbol], change, ts)
        started = time.perf_counter()
        fired += len(index.evaluate(0, window))
        per_quote.append((time.perf_counter() - started) / len(window))
    return per_quote, fired


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m alerts.bench", description=__doc__)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--organisations", type=int, default=1_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--quotes", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=50, help="quotes per publish window")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    sizes = {"alerts": args.alerts, "organisations": args.organisations, "symbols": args.symbols, "seed": args.seed}
    started = time.perf_counter()
    index, prices = build(**sizes)
    built = time.perf_counter() - started
    tracemalloc.start()
    traced = build(**sizes)  # again, traced: what the index holds
    memory = tracemalloc.get_traced_memory()[0]
    del traced
    tracemalloc.stop()
    biggest = max(len(book) for book in index.books.values())

    per_quote, fired = play(index, prices, quotes=args.quotes, batch=args.batch, seed=args.seed)
    per_quote.sort()

    edits = []
    for schema in sorted(index.schemas)[:200]:
        delay, rules = index.placed(schema)
        started = time.perf_counter()
        index.schema_replace(schema, delay, rules)
        edits.append(time.perf_counter() - started)

    median, p99 = statistics.median(per_quote) * 1e6, per_quote[int(len(per_quote) * 0.99)] * 1e6
    lines = [
        f"alerts {len(index):,} over {args.organisations:,} organisations, {len(index.books):,} books "
        f"(largest {biggest:,} alerts on one symbol)",
        f"build (data and index) {built:.2f} s, memory {memory / 2**20:.0f} MiB (rules, books, ladders)",
        f"quotes {len(per_quote) * args.batch:,} in windows of {args.batch}: per quote "
        f"median {median:.2f} µs, p99 {p99:.2f} µs; "
        f"{fired:,} firings, {index.suppressed:,} crossings inside a cooldown",
        f"reloading one organisation (its ~{len(index) // args.organisations} alerts): "
        f"median {statistics.median(edits) * 1e3:.2f} ms, max {max(edits) * 1e3:.2f} ms",
    ]
    print("\n".join(lines))  # noqa: T201 (a command's output)


if __name__ == "__main__":
    main()
