"""Dev mode without Redis: one process, the in-memory channel layer, the feed inside the web process."""

import pytest
from channels.layers import channel_layers
from django.test import override_settings

from tests.streaming.conftest import Committed, connect, receive, receive_until

pytestmark = [pytest.mark.asyncio]

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 10_000}}}


async def test_quotes_stream_without_redis_from_the_in_process_feed(committed: Committed, hub_cleanup: None) -> None:
    tenant = await committed.tenant("pro")
    with override_settings(REDIS_URL="", CHANNEL_LAYERS=IN_MEMORY, STREAM_FEED_IN_PROCESS=True):
        channel_layers.backends.clear()  # build the in-memory layer from the overridden settings
        try:
            ws = connect(tenant.host, session=tenant.session, query="symbols=AAPL,MSFT")
            assert (await ws.connect())[0]
            assert (await receive(ws))["type"] == "snapshot"
            update = await receive_until(ws, "quotes", within=5)
            assert {q["symbol"] for q in update["quotes"]} <= {"AAPL", "MSFT"}
            await ws.disconnect()
        finally:
            channel_layers.backends.clear()
