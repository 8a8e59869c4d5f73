"""The naive design's feed: one `group_send` per tick, to the tick's symbol group.

DJANGO_SETTINGS_MODULE=bench.systems.naive.settings python -m bench.systems.naive.bridge --redis-url URL --channel C
"""

from __future__ import annotations

import argparse
import os

import django

from bench import wire
from bench.systems.ticks import tick_batches


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--channel", required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.systems.naive.settings")
    django.setup()
    from channels.layers import get_channel_layer

    from bench.systems.naive.groups import symbol_group

    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("bench.systems.naive.settings has no channel layer")
    async for batch in tick_batches(args.redis_url, args.channel):
        for quote in batch:
            await layer.group_send(symbol_group(quote["symbol"]), {"type": "quote", "quote": quote})


if __name__ == "__main__":
    wire.run(main)
