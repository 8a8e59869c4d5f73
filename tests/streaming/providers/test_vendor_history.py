"""Vendor history against the local fakes: each vendor's REST minute bars back-fill the day, live quotes
extend it, a delayed plan gets its quotes from the first second (and after a failover), and a history
that fails is reported and retried without stopping the quotes."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson
import pytest
from channels.layers import InMemoryChannelLayer

from streaming.feed import Feed, now_ms
from streaming.providers import alpaca, polygon
from streaming.providers.alpaca import AlpacaProvider
from streaming.providers.finnhub import FinnhubProvider
from streaming.providers.history import trading_day
from streaming.providers.polygon import PolygonProvider
from streaming.providers.vendor import VendorStreamProvider
from streaming.quotes import Quote
from streaming.state import Watch
from streaming.state.memory import MemoryStreamState

from .fake_alpaca import KEY_ID, SECRET_KEY, FakeAlpaca
from .fake_finnhub import FakeFinnhub
from .fake_polygon import FakePolygon
from .minute_bars import MINUTE_MS, Bar, minute_bars

DELAY_MS = 15 * MINUTE_MS  # the Free plan's
VENDORS = ("alpaca", "polygon", "finnhub")
FINNHUB_KEY = "good-key"


@dataclass
class Vendor:
    """A vendor's fake and a way to make providers for it, behind one face for these tests."""

    name: str
    fake: Any
    make: Callable[[], VendorStreamProvider]
    serve_bars: Callable[[dict[str, list[Bar]]], None]
    fail: Callable[[str], None]  # "error" (HTTP 500), "malformed" (not JSON), "ok"
    trade: Callable[[str, float, int], Awaitable[object]]
    streams: Callable[[str], bool]  # the fake streams the symbol to a connection

    def provider(self) -> VendorStreamProvider:
        provider = self.make()
        provider.BACKOFF_FIRST_SECONDS = 0.02
        provider.HISTORY_RETRY_FIRST_SECONDS = 0.05
        provider.HISTORY_RETRY_MAX_SECONDS = 0.1
        return provider


def _alpaca(fake: FakeAlpaca) -> Vendor:
    def fail(kind: str) -> None:
        fake.bars_status = 500 if kind == "error" else 200
        fake.bars_raw = b'{"bars": {"AAPL": [{"t": ' if kind == "malformed" else None

    return Vendor(
        "alpaca",
        fake,
        lambda: AlpacaProvider(
            key_id=KEY_ID, secret_key=SECRET_KEY, stream_url=fake.stream_url, data_url=fake.data_url
        ),
        lambda bars: setattr(fake, "bars", bars),
        fail,
        lambda symbol, price, ts: fake.trade(symbol, price, ns=ts * 1_000_000),
        lambda symbol: bool(fake.live()) and symbol in fake.live()[-1].trades,
    )


def _polygon(fake: FakePolygon) -> Vendor:
    def fail(kind: str) -> None:
        fake.aggs_status = HTTPStatus.INTERNAL_SERVER_ERROR if kind == "error" else HTTPStatus.OK
        fake.aggs_raw = b'{"status": "OK", "results": [' if kind == "malformed" else None

    return Vendor(
        "polygon",
        fake,
        lambda: PolygonProvider(api_key=fake.key, url=fake.ws_url, api_url=fake.api_url),
        lambda bars: setattr(fake, "bars", bars),
        fail,
        lambda symbol, price, ts: fake.send([{"ev": "T", "sym": symbol, "p": price, "s": 100, "t": ts}]),
        lambda symbol: f"T.{symbol}" in fake.subscribed(),
    )


def _finnhub(fake: FakeFinnhub) -> Vendor:
    def fail(kind: str) -> None:
        fake.candle_status = HTTPStatus.INTERNAL_SERVER_ERROR if kind == "error" else HTTPStatus.OK
        fake.candle_raw = '{"s": "ok", "t": [' if kind == "malformed" else None

    return Vendor(
        "finnhub",
        fake,
        lambda: FinnhubProvider(api_key=FINNHUB_KEY, stream_url=fake.url, api_url=fake.api_url),
        lambda bars: setattr(fake, "bars", bars),
        fail,
        lambda symbol, price, ts: fake.trade(symbol, price, ts=ts),
        lambda symbol: symbol in fake.subscribed,
    )


@contextlib.asynccontextmanager
async def vendor_running(name: str) -> AsyncIterator[Vendor]:
    if name == "alpaca":
        async with FakeAlpaca() as fake:
            yield _alpaca(fake)
        return
    server: FakePolygon | FakeFinnhub = FakePolygon() if name == "polygon" else FakeFinnhub(token=FINNHUB_KEY)
    await server.start()
    try:
        yield _polygon(server) if isinstance(server, FakePolygon) else _finnhub(server)
    finally:
        await server.stop()


@pytest.fixture(params=VENDORS)
async def vendor(request: pytest.FixtureRequest) -> AsyncIterator[Vendor]:
    async with vendor_running(request.param) as running:
        yield running


@contextlib.asynccontextmanager
async def started(provider: VendorStreamProvider) -> AsyncIterator[VendorStreamProvider]:
    try:
        await provider.start()
        yield provider
    finally:
        await provider.stop()


async def eventually(check: Callable[[], object], seconds: float = 5.0) -> None:
    """Wait until `check()` holds (state no event announces), at most `seconds`."""
    async with asyncio.timeout(seconds):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def next_quote(batches: AsyncIterator[list[Quote]], symbol: str) -> Quote:
    async with asyncio.timeout(5):
        while True:
            for quote in await anext(batches):
                if quote.symbol == symbol:
                    return quote


def the_day(now: int) -> list[Bar]:
    return minute_bars(until_ms=now, minutes=400)


def price_at(bars: list[Bar], ts: int) -> float:
    """What the history's documented points say for a moment inside a bar of rising closes: the open at the
    minute's start, its low at 15 s, its high at 30 s, its close from 45 s."""
    bar = next(b for b in bars if b.t <= ts < b.t + MINUTE_MS)
    return (bar.o, bar.l, bar.h, bar.c)[min((ts - bar.t) // 15_000, 3)]


async def test_a_subscribed_symbols_day_is_back_filled_and_its_quote_a_delay_ago_is_the_bar_close(
    vendor: Vendor,
) -> None:
    now = now_ms()
    day = the_day(now)
    vendor.serve_bars({"AAPL": day, "MSFT": minute_bars(until_ms=now, minutes=400, first_close=400.0)})
    provider = vendor.provider()
    assert provider.has_history
    await provider.subscribe(["AAPL", "MSFT"])  # waits for the backfill (a few seconds at most)

    minute = now - DELAY_MS - (now - DELAY_MS) % MINUTE_MS
    bar = next(b for b in day if b.t == minute)
    quote = provider.quote_at("AAPL", minute + 50_000)
    assert quote is not None
    assert (quote.symbol, quote.price, quote.ts) == ("AAPL", bar.c, minute + 50_000)
    msft = provider.quote_at("MSFT", minute + 50_000)
    assert msft is not None
    assert msft.price == bar.c + 300.0
    # The trading day is there: the bar recorder fills a symbol's day in from it.
    early = provider.quote_at("AAPL", now - 380 * MINUTE_MS)
    assert early is not None
    assert early.price == price_at(day, now - 380 * MINUTE_MS)
    assert provider.status().error is None
    await provider.stop()


async def test_live_quotes_extend_the_history(vendor: Vendor) -> None:
    now = now_ms()
    day = minute_bars(until_ms=now, minutes=300)
    vendor.serve_bars({"AAPL": day})
    provider = vendor.provider()
    await provider.subscribe(["AAPL"])
    batches = aiter(provider.quotes())
    async with started(provider):
        await eventually(lambda: vendor.streams("AAPL"))
        ts = now_ms()
        await vendor.trade("AAPL", 321.5, ts)
        live = await next_quote(batches, "AAPL")
        assert live.price == 321.5
        assert provider.quote_at("AAPL", ts + 500) == Quote(
            "AAPL", 321.5, live.bid, live.ask, live.volume, live.change, live.change_pct, ts + 500
        )
        # A trade's size adds to the day's volume that the bars told.
        assert (
            live.volume
            == sum(b.v for b in day if b.t + MINUTE_MS <= now and trading_day(b.t) == trading_day(now)) + 100
        )
        before = provider.quote_at("AAPL", now - 2 * MINUTE_MS + 50_000)
        assert before is not None
        assert before.price == price_at(day, now - 2 * MINUTE_MS + 50_000)


@pytest.mark.parametrize("failure", ["error", "malformed"])
async def test_a_history_that_fails_is_reported_and_retried_and_the_quotes_go_on(vendor: Vendor, failure: str) -> None:
    now = now_ms()
    vendor.serve_bars({"AAPL": the_day(now)})
    vendor.fail(failure)
    provider = vendor.provider()
    provider.HISTORY_RETRY_FIRST_SECONDS = provider.HISTORY_RETRY_MAX_SECONDS = 0.5
    await provider.subscribe(["AAPL"])
    assert "history" in (provider.status().error or "")
    assert provider.quote_at("AAPL", now - DELAY_MS) is None
    batches = aiter(provider.quotes())
    async with started(provider):
        await eventually(lambda: vendor.streams("AAPL"))
        await vendor.trade("AAPL", 187.25, now_ms())
        assert (await next_quote(batches, "AAPL")).price == 187.25  # the live stream is not held up
        assert provider.status().connected
        vendor.fail("ok")
        await eventually(lambda: provider.quote_at("AAPL", now - DELAY_MS) is not None)
        assert provider.status().error is None


async def test_finnhub_without_candles_says_so_and_delays_from_the_live_quotes() -> None:
    async with vendor_running("finnhub") as vendor:
        vendor.fake.candle_status = HTTPStatus.FORBIDDEN  # candles are for paid plans
        provider = vendor.provider()
        await provider.subscribe(["AAPL"])
        error = provider.status().error or ""
        assert "does not serve candles" in error
        assert "history tried again in 300 s" in error  # a plan does not change every few seconds
        batches = aiter(provider.quotes())
        async with started(provider):
            await eventually(lambda: vendor.streams("AAPL"))
            ts = now_ms()
            await vendor.trade("AAPL", 190.0, ts)
            assert (await next_quote(batches, "AAPL")).price == 190.0
            assert provider.quote_at("AAPL", ts - DELAY_MS) is None  # not covered yet: nothing made up
            at = provider.quote_at("AAPL", ts + 1)
            assert at is not None
            assert at.price == 190.0


async def test_every_page_of_bars_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alpaca, "BARS_PAGE_LIMIT", 150)
    monkeypatch.setattr(polygon, "AGGS_LIMIT", "150")
    for name in ("alpaca", "polygon"):
        async with vendor_running(name) as vendor:
            now = now_ms()
            vendor.serve_bars({"AAPL": the_day(now), "MSFT": the_day(now)})
            provider = vendor.provider()
            await provider.subscribe(["AAPL", "MSFT"])
            for symbol in ("AAPL", "MSFT"):
                first = provider.quote_at(symbol, now - 389 * MINUTE_MS)
                assert first is not None, name
                assert first.price == price_at(the_day(now), now - 389 * MINUTE_MS)
            requests = vendor.fake.bars_requests if name == "alpaca" else vendor.fake.aggs_requests
            assert len(requests) >= 4, name  # 390 bars a symbol, 150 an answer
            assert provider.history.points("AAPL") == 4 * 390
            await provider.stop()


async def test_a_polygon_next_url_elsewhere_is_not_followed_with_the_key() -> None:
    async with vendor_running("polygon") as vendor:
        vendor.fake.aggs_raw = orjson.dumps(
            {"status": "OK", "results": [], "next_url": "https://collector.example/v2/aggs?cursor=1"}
        )
        provider = vendor.provider()
        await provider.subscribe(["AAPL"])
        assert "next_url leaves" in (provider.status().error or "")
        assert len(vendor.fake.aggs_requests) == 1
        await provider.stop()


async def delayed(state: MemoryStreamState, *, since: int) -> dict[str, Any] | None:
    """The feed's last 15-minute-delayed quote of AAPL, if it is of `since` or later."""
    encoded = (await state.last_quotes(15, ["AAPL"])).get("AAPL")
    quote = orjson.loads(encoded) if encoded else None
    return quote if quote and quote["ts"] >= since else None


async def test_a_delayed_plan_gets_quotes_from_the_first_second_and_again_after_a_failover(vendor: Vendor) -> None:
    """Through the feed: no live trade at all, yet the Free plan's watch has its 15-minute-old quote at once,
    from the first leader and from the one that takes over (its own process: an empty history)."""
    now = now_ms()
    day = the_day(now)
    vendor.serve_bars({"AAPL": day})
    state = MemoryStreamState()
    await state.watches_update("web-1", {Watch("acme", 15, "AAPL")}, set(), full=True)
    for leader in ("first", "after failover"):
        feed = Feed(vendor.provider(), state, InMemoryChannelLayer())
        leading_since = now_ms()
        running = asyncio.create_task(feed.run())
        try:
            async with asyncio.timeout(5):
                while (quote := await delayed(state, since=leading_since - DELAY_MS)) is None:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        finally:
            feed.stop()
            async with asyncio.timeout(10):
                await running
        assert leading_since - DELAY_MS <= quote["ts"] <= now_ms() - DELAY_MS, leader
        assert quote["price"] == price_at(day, quote["ts"]), leader
