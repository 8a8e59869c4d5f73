"""FinnhubProvider against a local fake of Finnhub's websocket and REST API (no database, no network)."""

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal

import pytest
from django.test import override_settings

from streaming.providers.finnhub import SYMBOL_LIMIT, FinnhubProvider
from streaming.quotes import Quote

from .fake_finnhub import FakeFinnhub

KEY = "good-key"
WAIT_SECONDS = 5.0
CLOSES = {"AAPL": 180.0, "MSFT": 400.0, "NVDA": 500.0}


async def until(predicate: Callable[[], object], *, within: float = WAIT_SECONDS) -> None:
    """Wait for a state shared by the provider and the fake, polled (neither signals it), bounded."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@dataclass
class Feed:
    """A started provider, and the quotes it has produced so far (read by a task, as the feed does)."""

    provider: FinnhubProvider
    batches: list[list[Quote]] = field(default_factory=list)

    @property
    def quotes(self) -> list[Quote]:
        return [q for batch in self.batches for q in batch]

    def of(self, symbol: str) -> list[Quote]:
        return [q for q in self.quotes if q.symbol == symbol]

    async def read(self) -> None:
        async for batch in self.provider.quotes():
            self.batches.append(batch)


@pytest.fixture
async def fake() -> AsyncIterator[FakeFinnhub]:
    server = FakeFinnhub(token=KEY, closes=CLOSES)
    await server.start()
    yield server
    await server.stop()


@contextlib.asynccontextmanager
async def running(server: FakeFinnhub, *, key: str = KEY, **attributes: float) -> AsyncIterator[Feed]:
    provider = FinnhubProvider(api_key=key, stream_url=server.url, api_url=server.api_url)
    provider.BACKOFF_FIRST_SECONDS = 0.01
    provider.BACKOFF_MAX_SECONDS = 0.05
    for name, value in attributes.items():
        setattr(provider, name, value)
    feed = Feed(provider)
    reader = asyncio.create_task(feed.read())
    await provider.start()
    try:
        yield feed
    finally:
        await provider.stop()
        async with asyncio.timeout(WAIT_SECONDS):
            await reader


async def test_trades_become_spec_quotes(fake: FakeFinnhub) -> None:
    async with running(fake) as feed:
        await feed.provider.subscribe(["AAPL", "MSFT"])
        await until(lambda: fake.subscribed == ["AAPL", "MSFT"])
        assert feed.provider.status().connected
        assert sorted(fake.quote_requests) == ["AAPL", "MSFT"]
        assert sorted(r["symbol"] for r in fake.candle_requests) == ["AAPL", "MSFT"]  # their day's history
        assert fake.rest_tokens == ["header"] * 4  # closes and candles: the key stays out of URLs that get logged

        await fake.trade("AAPL", 187.2, volume=100, ts=1_700_000_000_000)
        await until(lambda: feed.of("AAPL"))
        assert feed.of("AAPL") == [Quote("AAPL", 187.2, 187.2, 187.2, 100, 7.2, 4.0, 1_700_000_000_000)]

        # Several trades in one frame: the day's volume accumulates, the last trade's price is the quote's.
        await fake.trades(
            [
                {"s": "AAPL", "p": 187.5, "t": 1_700_000_000_100, "v": 50, "c": ["1"]},
                {"s": "MSFT", "p": 396.0, "t": 1_700_000_000_150, "v": 10},
                {"s": "AAPL", "p": 189.0, "t": 1_700_000_000_200, "v": 25},
            ]
        )
        await until(lambda: len(feed.batches) == 2)
        assert feed.batches[1] == [
            Quote("AAPL", 189.0, 189.0, 189.0, 175, 9.0, 5.0, 1_700_000_000_200),
            Quote("MSFT", 396.0, 396.0, 396.0, 10, -4.0, -1.0, 1_700_000_000_150),
        ]
        assert feed.provider.status().last_quote_ms is not None


async def test_pings_are_ignored(fake: FakeFinnhub) -> None:
    async with running(fake) as feed:
        await feed.provider.subscribe(["AAPL"])
        await until(lambda: fake.subscribed == ["AAPL"])
        for _ in range(3):
            await fake.ping()
        await fake.trade("AAPL", 181.0)
        await until(lambda: feed.quotes)
        assert len(feed.batches) == 1
        assert feed.provider._malformed == 0
        status = feed.provider.status()
        assert (status.connected, status.error, status.reconnects) == (True, None, 0)


async def test_symbol_without_previous_close_has_no_change(fake: FakeFinnhub) -> None:
    async with running(fake) as feed:
        await feed.provider.subscribe(["ZZZZ"])  # Finnhub's /quote answers an unknown symbol with zeros
        await until(lambda: fake.subscribed == ["ZZZZ"])
        await fake.trade("ZZZZ", 12.5, volume=3, ts=1_700_000_000_000)
        await until(lambda: feed.quotes)
        assert feed.quotes == [Quote("ZZZZ", 12.5, 12.5, 12.5, 3, 0.0, 0.0, 1_700_000_000_000)]


@pytest.mark.parametrize("refuse", ["http", "message"])
async def test_bad_key_is_fatal_and_does_not_spin(refuse: Literal["http", "message"]) -> None:
    server = FakeFinnhub(token=KEY, refuse=refuse)
    await server.start()
    try:
        # Fast backoff (from `running`): a refusal taken for a lost connection would retry every few ms.
        async with running(server, key="wrong-key", FATAL_RETRY_SECONDS=0.5) as feed:
            await feed.provider.subscribe(["AAPL"])
            await until(lambda: feed.provider.status().error is not None)
            await asyncio.sleep(1.0)
            status = feed.provider.status()
            assert "FINNHUB_API_KEY" in (status.error or "")
            assert not status.connected
            assert 1 <= server.attempts <= 3, server.attempts
            assert server.accepted == 0
            assert not feed.quotes
    finally:
        await server.stop()


async def test_our_symbol_cap_marks_the_excess_unserved_without_sending_it(fake: FakeFinnhub) -> None:
    async with running(fake, SYMBOL_CAP=3) as feed:
        await feed.provider.subscribe(["NVDA", "AAPL"])
        await feed.provider.subscribe(["MSFT", "AMZN", "TSLA"])
        await until(lambda: len(fake.subscribed) == 3)
        await asyncio.sleep(0.1)  # nothing more arrives
        assert fake.subscribes() == ["NVDA", "AAPL", "MSFT"]  # first asked, first served
        assert feed.provider.status().unserved == {"AMZN": SYMBOL_LIMIT, "TSLA": SYMBOL_LIMIT}

        for symbol in ("NVDA", "AAPL", "MSFT", "AMZN"):
            await fake.trade(symbol, 100.0, force=True)
        await until(lambda: len(feed.quotes) == 3)
        await asyncio.sleep(0.05)
        assert {q.symbol for q in feed.quotes} == {"NVDA", "AAPL", "MSFT"}

        # A freed slot goes to the next symbol waiting.
        await feed.provider.unsubscribe(["NVDA"])
        await until(lambda: "AMZN" in fake.subscribed)
        assert fake.subscribed == ["AAPL", "MSFT", "AMZN"]
        assert feed.provider.status().unserved == {"TSLA": SYMBOL_LIMIT}
        # Unsubscribing a waiting symbol sends nothing.
        await feed.provider.unsubscribe(["TSLA"])
        assert feed.provider.status().unserved == {}
        await asyncio.sleep(0.05)
        assert fake.unsubscribes() == ["NVDA"]


async def test_finnhubs_symbol_cap_marks_the_refused_symbols_and_the_rest_stream() -> None:
    server = FakeFinnhub(token=KEY, closes=CLOSES, symbol_cap=2)
    await server.start()
    try:
        async with running(server) as feed:
            await feed.provider.subscribe(["AAPL", "MSFT", "NVDA", "TSLA"])
            await until(lambda: len(feed.provider.status().unserved) == 2)
            status = feed.provider.status()
            assert status.unserved == {"NVDA": SYMBOL_LIMIT, "TSLA": SYMBOL_LIMIT}
            assert (status.connected, status.error, status.reconnects) == (True, None, 0)
            assert server.subscribed == ["AAPL", "MSFT"]

            await server.trade("AAPL", 181.0)
            await server.trade("MSFT", 401.0)
            await until(lambda: len(feed.quotes) == 2)
            assert [q.symbol for q in feed.quotes] == ["AAPL", "MSFT"]

            # The cap learnt holds for the connection: a further symbol is not even sent.
            await feed.provider.subscribe(["AMZN"])
            assert feed.provider.status().unserved["AMZN"] == SYMBOL_LIMIT
            await asyncio.sleep(0.05)
            assert "AMZN" not in server.subscribes()
    finally:
        await server.stop()


async def test_dropped_connection_reconnects_and_resubscribes(fake: FakeFinnhub) -> None:
    async with running(fake) as feed:
        await feed.provider.subscribe(["AAPL", "MSFT"])
        await until(lambda: fake.subscribed == ["AAPL", "MSFT"])
        await fake.trade("AAPL", 181.0, volume=10)
        await until(lambda: feed.quotes)

        fake.drop()
        await until(lambda: fake.accepted == 2 and sorted(fake.subscribed) == ["AAPL", "MSFT"])
        await until(lambda: feed.provider.status().connected)
        status = feed.provider.status()
        assert status.reconnects == 1
        assert status.error is None
        assert sorted(fake.subscribes()) == ["AAPL", "AAPL", "MSFT", "MSFT"]

        await fake.trade("AAPL", 182.0, volume=5)
        await fake.trade("MSFT", 402.0, volume=7)
        await until(lambda: len(feed.quotes) == 3)
        assert [(q.symbol, q.price, q.volume) for q in feed.quotes[1:]] == [("AAPL", 182.0, 15), ("MSFT", 402.0, 7)]


async def test_malformed_frames_are_skipped(fake: FakeFinnhub) -> None:
    async with running(fake) as feed:
        await feed.provider.subscribe(["AAPL"])
        await until(lambda: fake.subscribed == ["AAPL"])
        await fake.send_raw('{"type":"trade","data":[{"s":"AAPL"')  # cut short
        await fake.send_raw('["not", "an", "object"]')
        await fake.send_frame({"type": "trade", "data": "AAPL 181"})
        # A frame with one unreadable trade keeps its good ones.
        await fake.trades([{"s": "AAPL", "p": "181.0", "t": 1, "v": 1}, {"s": "AAPL", "p": 181.5, "t": 2, "v": 4}])
        await until(lambda: feed.quotes)
        assert [(q.price, q.volume, q.ts) for q in feed.quotes] == [(181.5, 4, 2)]
        assert feed.provider._malformed == 3

        await fake.trade("AAPL", 182.0, volume=1, ts=3)
        await until(lambda: len(feed.quotes) == 2)
        assert feed.quotes[-1].price == 182.0
        status = feed.provider.status()
        assert (status.connected, status.reconnects) == (True, 0)


async def test_unsubscribe_stops_a_symbol(fake: FakeFinnhub) -> None:
    async with running(fake) as feed:
        await feed.provider.subscribe(["AAPL", "MSFT"])
        await until(lambda: fake.subscribed == ["AAPL", "MSFT"])
        await feed.provider.unsubscribe(["AAPL"])
        await until(lambda: fake.subscribed == ["MSFT"])
        assert fake.unsubscribes() == ["AAPL"]

        await fake.trade("AAPL", 181.0, force=True)  # in flight when the unsubscribe landed
        await fake.trade("MSFT", 401.0)
        await until(lambda: feed.quotes)
        await asyncio.sleep(0.05)
        assert [q.symbol for q in feed.quotes] == ["MSFT"]


async def test_a_long_outage_does_not_end_the_provider() -> None:
    """Over a thousand failed attempts in a row (hours of outage at the real backoff) keep it retrying."""
    with socket.socket() as probe:  # a port nothing listens on: every attempt is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = FinnhubProvider(api_key=KEY, stream_url=f"ws://127.0.0.1:{port}", api_url=f"http://127.0.0.1:{port}")
    provider.BACKOFF_FIRST_SECONDS = 0.0
    logging.getLogger("streaming.providers.vendor").disabled = True
    await provider.start()
    try:
        await until(lambda: provider.status().reconnects > 1100 or provider._task is None or provider._task.done())
        assert provider._task is not None
        assert not provider._task.done()
    finally:
        await provider.stop()
        logging.getLogger("streaming.providers.vendor").disabled = False


async def test_previous_closes_bounded_and_partial() -> None:
    server = FakeFinnhub(token=KEY, closes=CLOSES, rest_delay=0.03)
    await server.start()
    try:
        provider = FinnhubProvider(api_key=KEY, stream_url=server.url, api_url=server.api_url)
        symbols = ["AAPL", "MSFT", "NVDA", *(f"X{i}" for i in range(9))]
        assert await provider.previous_closes(symbols) == CLOSES
        assert sorted(server.quote_requests) == sorted(symbols)
        assert 1 < server.rest_in_flight_max <= provider.CLOSES_CONCURRENCY

        refused = FinnhubProvider(api_key="wrong-key", stream_url=server.url, api_url=server.api_url)
        assert await refused.previous_closes(["AAPL"]) == {}
    finally:
        await server.stop()


def test_from_settings() -> None:
    for empty in ("", "   "):
        with override_settings(FINNHUB_API_KEY=empty), pytest.raises(ValueError, match="FINNHUB_API_KEY"):
            FinnhubProvider.from_settings()
    with override_settings(FINNHUB_API_KEY="k-1", FINNHUB_STREAM_URL="wss://ws.finnhub.io"):
        provider = FinnhubProvider.from_settings()
    assert (provider.name, provider.display_name, provider.SYMBOL_CAP) == ("finnhub", "Finnhub", 50)
    assert provider.connect_url() == "wss://ws.finnhub.io?token=k-1"
    assert provider.api_url == "https://finnhub.io/api/v1"
