"""The naive design's web side: one consumer per connection, one channel-layer group per symbol.

This is the design the product replaced (kept here, not in the product, as the benchmark's
baseline): every connection joins a group per symbol at connect and gets one frame per tick.
"""

import os
from typing import Any
from urllib.parse import parse_qs

import django
import orjson

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.systems.naive.settings")
django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from bench.systems.naive.groups import symbol_group  # noqa: E402


class QuoteConsumer(AsyncWebsocketConsumer):
    symbol_groups: list[str]

    async def connect(self) -> None:
        query = parse_qs(bytes(self.scope["query_string"]).decode("latin-1"))
        symbols = [s for s in query.get("symbols", [""])[0].split(",") if s]
        self.symbol_groups = [symbol_group(s) for s in symbols]
        for group in self.symbol_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "symbol_groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def quote(self, event: dict[str, Any]) -> None:
        await self.send(text_data=orjson.dumps({"type": "quotes", "quotes": [event["quote"]]}).decode())


application = ProtocolTypeRouter({"websocket": URLRouter([path("ws/stock-market/", QuoteConsumer.as_asgi())])})
