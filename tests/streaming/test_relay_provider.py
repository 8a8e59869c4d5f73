"""The relay provider against real Redis: what a publisher sends is what the feed gets, bad items dropped."""

import asyncio
import uuid
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from django.conf import settings

from streaming.providers import RelayProvider, provider_create
from streaming.providers.relay import quote_parse
from streaming.quotes import Quote

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="LOUD SKIP: the relay provider needs REDIS_URL")

AAPL = {"symbol": "AAPL", "price": 190.5, "bid": 190.49, "ask": 190.52, "volume": 1200,
        "change": 1.25, "change_pct": 0.66, "ts": 1_764_000_000_000}  # fmt: skip


def test_parse_accepts_a_spec_quote_and_refuses_broken_ones() -> None:
    assert quote_parse(AAPL) == Quote("AAPL", 190.5, 190.49, 190.52, 1200, 1.25, 0.66, 1_764_000_000_000)
    assert quote_parse({**AAPL, "price": 190}) is not None  # whole numbers are prices too
    for broken in ({**AAPL, "price": "190"}, {**AAPL, "ts": None}, {**AAPL, "volume": True}, {**AAPL, "symbol": ""},
                   {k: v for k, v in AAPL.items() if k != "bid"}, ["AAPL"], None):  # fmt: skip
        assert quote_parse(broken) is None, broken


def test_provider_create_picks_the_relay_by_name() -> None:
    provider = provider_create("relay")
    assert isinstance(provider, RelayProvider)
    assert provider.channel == settings.RELAY_CHANNEL


async def test_relay_yields_the_subscribed_quotes_of_each_message() -> None:
    channel = f"test:relay:{uuid.uuid4().hex}"
    provider = RelayProvider(redis_url=settings.REDIS_URL, channel=channel)
    publisher: Any = aioredis.Redis.from_url(settings.REDIS_URL)  # Any: the stubs lack aclose()
    await provider.start()
    try:
        await provider.subscribe(["AAPL"])
        batches = provider.quotes()
        msft = {**AAPL, "symbol": "MSFT"}
        await publisher.publish(channel, b"not json")
        await publisher.publish(channel, orjson.dumps([msft]))  # nobody follows MSFT: no batch at all
        await publisher.publish(channel, orjson.dumps([AAPL, msft, {**AAPL, "price": None}]))
        async with asyncio.timeout(5):
            batch = await anext(batches)
        assert [q.symbol for q in batch] == ["AAPL"]
        assert batch[0].encode() == orjson.dumps(AAPL)
        assert provider.rejected == 2  # the non-JSON message and the quote without a price
    finally:
        await provider.stop()
        await publisher.aclose()
