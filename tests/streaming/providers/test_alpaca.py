"""The Alpaca adapter against a local server speaking Alpaca's market data v2 protocol (fake_alpaca)."""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from django.test import override_settings

from streaming.providers import vendor
from streaming.providers.alpaca import AlpacaProvider, timestamp_ms
from streaming.quotes import Quote

from .fake_alpaca import KEY_ID, SECRET_KEY, FakeAlpaca, SnapshotsRequest, rfc3339

AUTH = {"action": "auth", "key": KEY_ID, "secret": SECRET_KEY}
NS = 1_721_807_813_639_713_735  # 2024-07-24T07:56:53.639713735Z


def subscribe(*symbols: str) -> dict[str, Any]:
    return {"action": "subscribe", "trades": list(symbols), "quotes": list(symbols)}


async def eventually(check: Callable[[], object], seconds: float = 5.0) -> None:
    """Wait until `check()` holds (it reads state that no event announces), at most `seconds`."""
    async with asyncio.timeout(seconds):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


class Reader:
    """Reads the provider's batches of quotes, every wait bounded."""

    def __init__(self, provider: AlpacaProvider) -> None:
        self._batches = provider.quotes()

    async def batch(self, seconds: float = 5.0) -> list[Quote]:
        async with asyncio.timeout(seconds):
            return await anext(self._batches)

    async def quote(self, symbol: str, seconds: float = 5.0) -> Quote:
        """The next quote for the symbol (others read past)."""
        async with asyncio.timeout(seconds):
            while True:
                for quote in reversed(await anext(self._batches)):
                    if quote.symbol == symbol:
                        return quote


@pytest.fixture
async def fake() -> AsyncIterator[FakeAlpaca]:
    async with FakeAlpaca() as server:
        yield server


@pytest.fixture
async def provider(fake: FakeAlpaca) -> AsyncIterator[AlpacaProvider]:
    alpaca = AlpacaProvider(
        key_id=KEY_ID, secret_key=SECRET_KEY, feed="iex", stream_url=fake.stream_url, data_url=fake.data_url
    )
    alpaca.BACKOFF_FIRST_SECONDS = 0.02
    yield alpaca
    await alpaca.stop()


async def streaming(provider: AlpacaProvider, fake: FakeAlpaca, *symbols: str) -> Reader:
    """Subscribe, start, and wait until the fake serves the symbols."""
    await provider.subscribe(symbols)
    reader = Reader(provider)
    await provider.start()
    await eventually(lambda: fake.live() and fake.live()[-1].trades == set(symbols))
    assert provider.status().connected
    return reader


def test_timestamps_become_epoch_milliseconds() -> None:
    assert timestamp_ms("2024-07-24T07:56:53.639713735Z") == 1_721_807_813_639
    assert timestamp_ms(rfc3339(NS)) == NS // 1_000_000
    assert timestamp_ms("2024-07-24T09:56:53.5+02:00") == 1_721_807_813_500
    assert timestamp_ms("2024-07-24T07:56:53Z") == 1_721_807_813_000
    with pytest.raises(ValueError, match="time zone"):
        timestamp_ms("2024-07-24T07:56:53.5")


def test_from_settings_names_the_missing_keys() -> None:
    with override_settings(ALPACA_API_KEY_ID="", ALPACA_API_SECRET_KEY="secret"):
        with pytest.raises(ValueError, match="ALPACA_API_KEY_ID") as refused:
            AlpacaProvider.from_settings()
        assert "ALPACA_API_SECRET_KEY" not in str(refused.value)
    with override_settings(ALPACA_API_KEY_ID="key", ALPACA_API_SECRET_KEY=""):
        with pytest.raises(ValueError, match="ALPACA_API_SECRET_KEY") as refused:
            AlpacaProvider.from_settings()
        assert "ALPACA_API_KEY_ID" not in str(refused.value)
    with (
        override_settings(ALPACA_API_KEY_ID="", ALPACA_API_SECRET_KEY=""),
        pytest.raises(ValueError, match="ALPACA_API_KEY_ID and ALPACA_API_SECRET_KEY"),
    ):
        AlpacaProvider.from_settings()
    with override_settings(
        ALPACA_API_KEY_ID="key",
        ALPACA_API_SECRET_KEY="secret",
        ALPACA_FEED="sip",
        ALPACA_STREAM_URL="wss://stream.example.test/v2/",
        ALPACA_DATA_URL="https://data.example.test/",
    ):
        alpaca = AlpacaProvider.from_settings()
    assert (alpaca.name, alpaca.display_name) == ("alpaca", "Alpaca")
    assert (alpaca.key_id, alpaca.secret_key, alpaca.feed) == ("key", "secret", "sip")
    assert alpaca.connect_url() == "wss://stream.example.test/v2/sip"
    assert alpaca.data_url == "https://data.example.test"


async def test_trades_and_quotes_become_spec_quotes(fake: FakeAlpaca, provider: AlpacaProvider) -> None:
    fake.closes = {"AAPL": 100.0, "MSFT": 400.0}
    await provider.subscribe(["AAPL", "MSFT"])
    # The previous closes come from the snapshots endpoint, with the key in headers.
    assert fake.snapshots_requests == [SnapshotsRequest(["AAPL", "MSFT"], "iex", KEY_ID, SECRET_KEY)]
    reader = Reader(provider)
    await provider.start()
    await eventually(lambda: fake.live() and fake.live()[0].trades == {"AAPL", "MSFT"})
    session = fake.sessions[0]
    assert session.received == [AUTH, subscribe("AAPL", "MSFT")]
    assert session.quotes == {"AAPL", "MSFT"}

    await fake.quote("AAPL", 101.0, 101.2, ns=NS)  # no trade yet: the mid price
    quote = await reader.quote("AAPL")
    assert (quote.symbol, quote.bid, quote.ask, quote.volume, quote.ts) == ("AAPL", 101.0, 101.2, 0, NS // 1_000_000)
    assert quote.price == pytest.approx(101.1)
    assert quote.change == pytest.approx(1.1)
    assert quote.change_pct == pytest.approx(1.1)

    await fake.trade("AAPL", 101.15, 50, ns=NS + 1_000_000_000)
    quote = await reader.quote("AAPL")
    assert (quote.price, quote.bid, quote.ask, quote.volume) == (101.15, 101.0, 101.2, 50)
    assert quote.change == pytest.approx(1.15)
    assert quote.change_pct == pytest.approx(1.15)
    assert quote.ts == NS // 1_000_000 + 1000

    # Alpaca batches messages: one frame, a trade and a quote, two quotes in one batch.
    both = [
        {"T": "t", "S": "AAPL", "i": 7, "x": "V", "p": 101.05, "s": 25, "c": ["@"], "t": rfc3339(NS + 2_000_000_000),
         "z": "C"},
        {"T": "q", "S": "AAPL", "bx": "V", "bp": 101.04, "bs": 1, "ax": "V", "ap": 101.3, "as": 4, "c": ["R"],
         "t": rfc3339(NS + 2_500_000_000), "z": "C"},
    ]  # fmt: skip
    await fake.send_raw(orjson.dumps(both).decode())
    batch = await reader.batch()
    assert [(q.price, q.bid, q.ask, q.volume) for q in batch] == [
        (101.05, 101.0, 101.2, 75),
        (101.05, 101.04, 101.3, 75),
    ]

    await fake.trade("MSFT", 396.0, 10)  # a trade without a quote yet: bid = ask = price
    quote = await reader.quote("MSFT")
    assert (quote.price, quote.bid, quote.ask, quote.volume) == (396.0, 396.0, 396.0, 10)
    assert (quote.change, quote.change_pct) == (-4.0, -1.0)
    for each in (quote, *batch):
        assert each.bid <= each.price <= each.ask
    assert provider.status().last_quote_ms is not None


async def test_a_refused_key_is_reported_and_not_retried_in_a_loop(fake: FakeAlpaca, provider: AlpacaProvider) -> None:
    fake.refuse_auth = True
    provider.FATAL_RETRY_SECONDS = 0.6
    await provider.subscribe(["AAPL"])
    await provider.start()
    await eventually(lambda: provider.status().error)
    status = provider.status()
    assert status.error is not None
    assert "Alpaca refused the key (402 auth failed)" in status.error
    assert "ALPACA_API_KEY_ID" in status.error
    assert "ALPACA_API_SECRET_KEY" in status.error
    assert status.connected is False
    await asyncio.sleep(1.0)
    assert 1 <= fake.connections <= 2  # one attempt, and one more after FATAL_RETRY_SECONDS
    assert provider.status().connected is False
    assert all(session.received == [AUTH] for session in fake.sessions)  # never a subscribe


async def test_a_feed_outside_the_plan_is_fatal(fake: FakeAlpaca, provider: AlpacaProvider) -> None:
    fake.refuse_feed = True
    await provider.subscribe(["AAPL"])
    await provider.start()
    await eventually(lambda: provider.status().error)
    error = provider.status().error
    assert error is not None
    assert "409 insufficient subscription" in error
    assert "ALPACA_FEED" in error
    await asyncio.sleep(0.2)
    assert fake.connections == 1


async def test_a_feed_alpaca_does_not_have_is_fatal(fake: FakeAlpaca) -> None:
    alpaca = AlpacaProvider(key_id=KEY_ID, secret_key=SECRET_KEY, feed="nope", stream_url=fake.stream_url)
    try:
        await alpaca.start()
        await eventually(lambda: alpaca.status().error)
        error = alpaca.status().error
        assert error is not None
        assert f"Alpaca has no stream at {fake.stream_url}/nope (HTTP 404 on connecting)" in error
        assert "ALPACA_FEED" in error
        await asyncio.sleep(0.1)
        assert alpaca.status().reconnects == 1  # not retried before FATAL_RETRY_SECONDS
    finally:
        await alpaca.stop()


async def test_the_connection_limit_is_retried_with_backoff(
    fake: FakeAlpaca, provider: AlpacaProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    bounds: list[float] = []

    class Jitter:  # full jitter draws from [0, bound]: record the bound, wait all of it
        @staticmethod
        def uniform(low: float, high: float) -> float:
            bounds.append(high)
            return high

    monkeypatch.setattr(vendor, "random", Jitter)
    provider.BACKOFF_FIRST_SECONDS = 0.01
    fake.refuse_connection = True
    await provider.subscribe(["AAPL"])
    await provider.start()
    await eventually(lambda: fake.connections >= 4)
    status = provider.status()
    assert status.error is not None
    assert "406 connection limit exceeded" in status.error
    assert status.connected is False
    assert status.reconnects >= 3
    assert bounds[:3] == [pytest.approx(0.02), pytest.approx(0.04), pytest.approx(0.08)]

    fake.refuse_connection = False  # the other client went away
    await eventually(lambda: provider.status().connected)
    assert provider.status().error is None
    await eventually(lambda: fake.live() and fake.live()[0].trades == {"AAPL"})


async def test_symbols_beyond_the_plans_limit_are_unserved_and_the_others_stream(
    fake: FakeAlpaca, provider: AlpacaProvider
) -> None:
    fake.symbol_limit = 3
    await provider.subscribe(["AAA", "BBB", "CCC", "DDD", "EEE"])
    reader = Reader(provider)
    await provider.start()
    # Alpaca refuses the whole request (405); asked one by one, three are served.
    await eventually(lambda: provider.status().unserved == {"DDD": "symbol_limit", "EEE": "symbol_limit"})
    session = fake.sessions[0]
    assert session.requests("subscribe") == [
        subscribe("AAA", "BBB", "CCC", "DDD", "EEE"),
        *(subscribe(symbol) for symbol in ("AAA", "BBB", "CCC", "DDD", "EEE")),
    ]
    assert session.trades == session.quotes == {"AAA", "BBB", "CCC"}
    assert provider.status().connected
    assert fake.connections == 1
    assert provider.symbol_limit == 3
    for symbol in ("AAA", "BBB", "CCC", "DDD", "EEE"):
        await fake.trade(symbol, 10.0)
    seen: set[str] = set()
    async with asyncio.timeout(5):
        while seen != {"AAA", "BBB", "CCC"}:
            seen |= {quote.symbol for quote in await reader.batch()}

    # The limit known, a further symbol is not asked for at all.
    asked = len(session.requests("subscribe"))
    await provider.subscribe(["FFF"])
    assert provider.status().unserved == {"DDD": "symbol_limit", "EEE": "symbol_limit", "FFF": "symbol_limit"}
    await asyncio.sleep(0.05)
    assert len(session.requests("subscribe")) == asked

    # Room freed: the first symbol waiting is subscribed.
    await provider.unsubscribe(["AAA"])
    await eventually(lambda: session.trades == {"BBB", "CCC", "DDD"})
    await eventually(lambda: provider.status().unserved == {"EEE": "symbol_limit", "FFF": "symbol_limit"})
    await fake.trade("DDD", 12.0)
    assert (await reader.quote("DDD")).price == 12.0
    await provider.unsubscribe(["EEE"])  # never subscribed at Alpaca: nothing to send
    assert provider.status().unserved == {"FFF": "symbol_limit"}
    assert session.requests("unsubscribe") == [{"action": "unsubscribe", "trades": ["AAA"], "quotes": ["AAA"]}]

    # After a drop, the new connection asks for what fits in one request.
    fake.drop()
    await eventually(lambda: fake.live() and fake.live()[0].trades == {"BBB", "CCC", "DDD"})
    assert fake.sessions[1].requests("subscribe") == [subscribe("BBB", "CCC", "DDD")]
    assert provider.status().unserved == {"FFF": "symbol_limit"}


async def test_a_symbol_alpaca_cannot_read_is_unserved_and_the_others_stream(
    fake: FakeAlpaca, provider: AlpacaProvider
) -> None:
    await provider.subscribe(["AAPL", "BRK B", "MSFT"])  # Alpaca refuses the request whole: 400 invalid syntax
    reader = Reader(provider)
    await provider.start()
    await eventually(lambda: provider.status().unserved == {"BRK B": "unknown_symbol"})
    session = fake.sessions[0]
    await eventually(lambda: session.trades == {"AAPL", "MSFT"})
    assert session.requests("subscribe")[1:] == [subscribe("AAPL"), subscribe("BRK B"), subscribe("MSFT")]
    await fake.trade("MSFT", 410.0)
    assert (await reader.quote("MSFT")).price == 410.0
    assert provider.symbol_limit is None


async def test_after_a_drop_it_reconnects_authenticates_and_resubscribes(
    fake: FakeAlpaca, provider: AlpacaProvider
) -> None:
    reader = await streaming(provider, fake, "AAPL", "MSFT")
    await fake.trade("AAPL", 190.0, 10)
    assert (await reader.quote("AAPL")).volume == 10

    assert fake.drop() == 1
    await eventually(lambda: fake.connections == 2 and fake.live() and fake.live()[0].trades == {"AAPL", "MSFT"})
    assert fake.sessions[1].received == [AUTH, subscribe("AAPL", "MSFT")]
    status = provider.status()
    assert status.connected
    assert status.reconnects == 1
    assert status.error is None

    await fake.trade("MSFT", 410.0, 3)
    assert (await reader.quote("MSFT")).price == 410.0
    await fake.trade("AAPL", 191.0, 5)
    quote = await reader.quote("AAPL")
    assert (quote.price, quote.volume) == (191.0, 15)  # the day's volume carries on


async def test_malformed_frames_are_skipped_and_the_stream_goes_on(fake: FakeAlpaca, provider: AlpacaProvider) -> None:
    reader = await streaming(provider, fake, "AAPL")
    good = {"T": "t", "S": "AAPL", "i": 1, "x": "V", "p": 190.5, "s": 10, "c": ["@"], "t": rfc3339(NS), "z": "C"}
    await fake.send_raw("not json at all")
    await fake.send_raw(b"\x91\x82\xa1T\xa1t\xa1S\xa4AAPL")  # msgpack, never asked for
    await fake.send_raw(orjson.dumps(good).decode())  # an object, not an array
    broken = [{**good, "p": "190.5"}, {**good, "t": "yesterday"}, {"T": "t"}, "t", good]
    await fake.send_raw(orjson.dumps(broken).decode())  # the good one of the frame still counts
    quote = await reader.quote("AAPL")
    assert (quote.price, quote.volume) == (190.5, 10)
    await fake.trade("AAPL", 191.0, 5)
    quote = await reader.quote("AAPL")
    assert (quote.price, quote.volume) == (191.0, 15)
    assert provider.status().connected
    assert fake.connections == 1
    assert provider._malformed == 7


async def test_unsubscribe_stops_a_symbol(fake: FakeAlpaca, provider: AlpacaProvider) -> None:
    reader = await streaming(provider, fake, "AAPL", "MSFT")
    await provider.unsubscribe(["MSFT"])
    session = fake.sessions[0]
    await eventually(lambda: session.trades == session.quotes == {"AAPL"})
    assert session.requests("unsubscribe") == [{"action": "unsubscribe", "trades": ["MSFT"], "quotes": ["MSFT"]}]
    assert await fake.trade("MSFT", 400.0) == 0  # Alpaca no longer sends it
    # A message Alpaca had already sent when the unsubscribe took effect is dropped too.
    late = {"T": "t", "S": "MSFT", "i": 9, "x": "V", "p": 400.0, "s": 1, "c": ["@"], "t": rfc3339(NS), "z": "C"}
    await fake.send_raw(orjson.dumps([late]).decode())
    await fake.trade("AAPL", 190.0)
    assert [quote.symbol for quote in await reader.batch()] == ["AAPL"]
    await provider.unsubscribe(["MSFT"])  # idempotent: nothing more sent
    await asyncio.sleep(0.05)
    assert len(session.requests("unsubscribe")) == 1
