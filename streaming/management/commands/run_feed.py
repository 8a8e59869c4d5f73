"""`manage.py run_feed`: lead the market-data feed, or stand by to take over."""

import asyncio
import logging
import signal
from typing import Any

import uvloop
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from streaming.feed import Feed
from streaming.market_hours import MarketHours
from streaming.observers import feed_observers
from streaming.providers import PROVIDERS, provider_create
from streaming.state import stream_state

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Read the market-data provider and publish quotes (one leader, any number of standbys)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", choices=PROVIDERS, default=None, help="Default: MARKET_DATA_PROVIDER.")

    def handle(self, *args: Any, **options: Any) -> None:
        layer = get_channel_layer()
        if layer is None:
            raise CommandError("CHANNEL_LAYERS is not configured.")
        try:
            provider = provider_create(options["provider"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        uvloop.run(self.run(provider, layer))

    async def run(self, provider: Any, layer: Any) -> None:
        market_hours = MarketHours() if settings.MARKET_HOURS else None
        feed = Feed(provider, stream_state(), layer, market_hours=market_hours, observers=feed_observers())
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, feed.stop)
        self.stdout.write(f"Feed {feed.holder} started (provider: {feed.provider.name}); waiting for the lock…")
        await feed.run()
        self.stdout.write(f"Feed {feed.holder} stopped after publishing {feed.published} quotes.")
