"""The Python floor: a plain `websockets` broadcast server fed by one Redis pub/sub subscription.

No framework, no auth, no buffering policy: each tick is encoded once and broadcast, one quote per
frame, to the connections that asked for its symbol (`?symbols=A,B`). Whatever the product spends
above this is the price of its features.

    python -m bench.systems.raw.server --port P --redis-url URL --channel NAME
"""

from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench import wire
from bench.systems.ticks import tick_batches

followers: dict[str, set[ServerConnection]] = defaultdict(set)


async def handler(connection: ServerConnection) -> None:
    path = connection.request.path if connection.request is not None else ""
    query = parse_qs(urlsplit(path).query)
    symbols = [s for s in query.get("symbols", [""])[0].split(",") if s]
    for symbol in symbols:
        followers[symbol].add(connection)
    try:
        await connection.wait_closed()
    finally:
        for symbol in symbols:
            followers[symbol].discard(connection)


async def relay(redis_url: str, channel: str) -> None:
    async for batch in tick_batches(redis_url, channel):
        for quote in batch:
            connections = followers.get(quote["symbol"])
            if connections:
                broadcast(connections, orjson.dumps({"type": "quotes", "quotes": [quote]}), text=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--channel", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    async with serve(handler, "127.0.0.1", args.port, compression=None, backlog=4096, max_size=65536):
        await relay(args.redis_url, args.channel)


if __name__ == "__main__":
    wire.run(main)
