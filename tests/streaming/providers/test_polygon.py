"""The Polygon (Massive) adapter against a local fake speaking Polygon's stocks websocket protocol."""

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any

import pytest
from django.test import override_settings

from streaming.providers.polygon import PolygonProvider, refusal_reason
from streaming.quotes import Quote

from .fake_polygon import FakePolygon

KEY = "pk-test-0123456789"
T0 = 1_764_000_000_000  # a SIP timestamp, epoch ms


def trade(symbol: str, price: Any, size: Any = 100, ts: Any = T0) -> dict[str, Any]:
    return {"ev": "T", "sym": symbol, "x": 4, "i": "1", "z": 3, "p": price, "s": size, "c": [0], "t": ts, "q": 1}


def nbbo(symbol: str, bid: float, ask: float, ts: int = T0) -> dict[str, Any]:
    return {"ev": "Q", "sym": symbol, "bx": 4, "bp": bid, "bs": 2, "ax": 7, "ap": ask, "as": 3, "t": ts, "q": 1, "z": 3}


def topics(*symbols: str) -> set[str]:
    return {f"{kind}.{symbol}" for symbol in symbols for kind in ("T", "Q")}


async def eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    """Polls the provider's state (which has nothing to wait on)."""
    async with asyncio.timeout(seconds):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


@pytest.fixture
async def fake() -> AsyncIterator[FakePolygon]:
    server = FakePolygon(key=KEY)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


Start = Callable[..., Awaitable[PolygonProvider]]


@pytest.fixture
async def start(fake: FakePolygon) -> AsyncIterator[Start]:
    """Starts a provider against the fake: quick backoff, the given symbols, class attributes overridden."""
    started: list[PolygonProvider] = []

    async def make(*symbols: str, key: str = KEY, **attributes: Any) -> PolygonProvider:
        provider = PolygonProvider(api_key=key, url=fake.ws_url, api_url=fake.api_url)
        provider.BACKOFF_FIRST_SECONDS, provider.BACKOFF_MAX_SECONDS, provider.OPEN_TIMEOUT_SECONDS = 0.02, 0.5, 2.0
        for name, value in attributes.items():
            setattr(provider, name, value)
        started.append(provider)
        await provider.subscribe(symbols)  # before start: sent once connected
        await provider.start()
        return provider

    yield make
    for provider in started:
        await provider.stop()


async def next_batch(batches: AsyncIterator[list[Quote]], seconds: float = 5.0) -> list[Quote]:
    async with asyncio.timeout(seconds):
        return await anext(batches)


# -- normalisation -------------------------------------------------------------------------------------
async def test_trades_and_quotes_become_spec_quotes(fake: FakePolygon, start: Start) -> None:
    fake.previous_closes = {"AAPL": 200.0}
    provider = await start("AAPL")
    batches = provider.quotes()
    await fake.wait_until(lambda: fake.subscribed() == topics("AAPL"))

    await fake.send([nbbo("AAPL", 209.9, 210.1, ts=T0)])  # no trade yet: the mid price
    assert await next_batch(batches) == [Quote("AAPL", 210.0, 209.9, 210.1, 0, 10.0, 5.0, T0)]
    await fake.send([trade("AAPL", 210.05, 100, ts=T0 + 5)])
    assert await next_batch(batches) == [Quote("AAPL", 210.05, 209.9, 210.1, 100, 10.05, 5.025, T0 + 5)]
    await fake.send([trade("AAPL", 210.3, 50, ts=T0 + 9)])  # through the ask: the stale ask gives way
    [quote] = await next_batch(batches)
    assert (quote.price, quote.volume, quote.ts) == (210.3, 150, T0 + 9)
    assert quote.bid <= quote.price <= quote.ask

    status = provider.status()
    assert status.connected
    assert (status.error, status.unserved, status.reconnects) == (None, {}, 0)
    assert abs((status.last_quote_ms or 0) - time.time() * 1000) < 5000
    # The snapshot was asked with the key in a header, never in the URL (URLs are logged).
    [(query, authorization)] = fake.snapshot_requests
    assert (query, authorization) == ({"tickers": ["AAPL"]}, f"Bearer {KEY}")
    assert fake.auths == [KEY]


async def test_several_events_in_one_frame_make_one_batch_in_order(fake: FakePolygon, start: Start) -> None:
    provider = await start("AAPL", "MSFT")
    batches = provider.quotes()
    await fake.wait_until(lambda: fake.subscribed() == topics("AAPL", "MSFT"))
    frame = [
        trade("MSFT", 410.0, 10, ts=T0 + 1),
        {"ev": "AM", "sym": "AAPL", "o": 1, "c": 1, "s": T0, "e": T0},  # a channel we did not ask for
        trade("AAPL", 190.0, 20, ts=T0 + 2),
        nbbo("MSFT", 409.9, 410.2, ts=T0 + 3),
    ]
    assert await fake.send(frame) == 1
    batch = await next_batch(batches)
    assert [(q.symbol, q.price, q.ts) for q in batch] == [("MSFT", 410.0, T0 + 1), ("AAPL", 190.0, T0 + 2),
                                                          ("MSFT", 410.0, T0 + 3)]  # fmt: skip
    assert (batch[2].bid, batch[2].ask, batch[2].volume) == (409.9, 410.2, 10)


async def test_without_previous_closes_quotes_still_stream_with_no_change(fake: FakePolygon, start: Start) -> None:
    fake.previous_closes = {"AAPL": 200.0}
    fake.snapshot_status = HTTPStatus.FORBIDDEN  # a plan without snapshots
    provider = await start("AAPL")
    batches = provider.quotes()
    await fake.wait_until(lambda: fake.subscribed() == topics("AAPL"))
    await fake.send([trade("AAPL", 210.0)])
    [quote] = await next_batch(batches)
    assert (quote.price, quote.change, quote.change_pct) == (210.0, 0.0, 0.0)


# -- refusals ------------------------------------------------------------------------------------------
async def test_a_refused_key_is_reported_by_name_and_not_retried_in_a_loop(fake: FakePolygon, start: Start) -> None:
    provider = await start("AAPL", key="pk-wrong", FATAL_RETRY_SECONDS=0.5)
    await fake.wait_until(lambda: len(fake.auths) == 1)
    await asyncio.sleep(1.2)
    assert 2 <= len(fake.connections) <= 3  # once at once, then every FATAL_RETRY_SECONDS: no spinning
    status = provider.status()
    assert not status.connected
    error = status.error or ""
    assert "POLYGON_API_KEY" in error
    assert "auth_failed" in error
    assert "pk-wrong" not in error
    assert fake.subscribed() == set()


@pytest.mark.parametrize("after_auth", [False, True], ids=["instead-of-auth", "after-auth-and-subscribe"])
async def test_max_connections_is_retried_with_growing_backoff(
    fake: FakePolygon, start: Start, monkeypatch: pytest.MonkeyPatch, after_auth: bool
) -> None:
    # Full jitter draws from [0, ceiling]: always the ceiling here, so the growth shows in the gaps.
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    fake.refuse_connections, fake.refuse_after_auth = 3, after_auth
    provider = await start("AAPL", BACKOFF_FIRST_SECONDS=0.02, BACKOFF_MAX_SECONDS=5.0)
    await eventually(lambda: "maximum number of websocket connections" in (provider.status().error or ""))
    assert not provider.status().connected or after_auth  # (after auth it is up until refused)
    batches = provider.quotes()
    await fake.wait_until(lambda: fake.subscribed() == topics("AAPL"))  # the fourth connection is let in

    gaps = [b - a for a, b in zip(fake.connections, fake.connections[1:], strict=False)]
    assert len(gaps) == 3
    assert [round(gap, 2) >= ceiling for gap, ceiling in zip(gaps, (0.04, 0.08, 0.16), strict=True)] == [True] * 3
    await fake.send([trade("AAPL", 190.0)])
    assert [q.symbol for q in await next_batch(batches)] == ["AAPL"]
    status = provider.status()
    assert status.connected
    assert (status.error, status.reconnects) == (None, 3)


async def test_symbols_polygon_does_not_serve_are_unserved_and_the_rest_stream(fake: FakePolygon, start: Start) -> None:
    fake.not_entitled = {"BRK.A"}
    provider = await start("AAPL", "BRK.A", "MSFT")
    batches = provider.quotes()
    await eventually(lambda: provider.status().unserved == {"BRK.A": "not_entitled"})
    await fake.wait_until(lambda: fake.subscribed() == topics("AAPL", "MSFT"))
    await fake.send([trade("AAPL", 190.0), trade("BRK.A", 700_000.0), trade("MSFT", 410.0)])
    assert [q.symbol for q in await next_batch(batches)] == ["AAPL", "MSFT"]
    status = provider.status()
    assert status.connected
    assert (status.reconnects, status.unserved) == (0, {"BRK.A": "not_entitled"})


async def test_a_data_type_outside_the_plan_leaves_symbols_served_by_the_other(fake: FakePolygon, start: Start) -> None:
    fake.not_entitled_kinds = {"Q"}  # a plan with trades but no NBBO quotes
    provider = await start("AAPL", "MSFT")
    batches = provider.quotes()
    await fake.wait_until(lambda: fake.subscribed() == {"T.AAPL", "T.MSFT"} and len(fake.received) == 4)
    await fake.send([trade("AAPL", 190.0)])  # after every answer to the subscriptions, on the same connection
    [quote] = await next_batch(batches)
    assert (quote.symbol, quote.bid, quote.ask) == ("AAPL", 190.0, 190.0)
    assert provider.status().unserved == {}


async def test_polygons_subscription_limit_marks_the_refused_symbols(fake: FakePolygon, start: Start) -> None:
    fake.topic_limit = 4  # two symbols' worth of topics on one connection
    provider = await start("AAPL", "AMZN", "MSFT", "TSLA")
    batches = provider.quotes()
    await eventually(lambda: provider.status().unserved == {"MSFT": "symbol_limit", "TSLA": "symbol_limit"})
    assert fake.subscribed() == topics("AAPL", "AMZN")
    await fake.send([trade("AMZN", 180.0)])
    assert [q.symbol for q in await next_batch(batches)] == ["AMZN"]
    assert provider.status().connected


async def test_our_symbol_cap_holds_the_excess_back_unsent_until_a_slot_frees(fake: FakePolygon, start: Start) -> None:
    provider = await start("AAPL", "AMZN", "MSFT", "TSLA", SYMBOL_CAP=2)
    await fake.wait_until(lambda: fake.subscribed() == topics("AAPL", "AMZN"))
    assert provider.status().unserved == {"MSFT": "symbol_limit", "TSLA": "symbol_limit"}
    sent = {m["params"] for m in fake.received if m["action"] == "subscribe"}
    assert sent == topics("AAPL", "AMZN")  # the excess never reached Polygon

    await provider.unsubscribe(["AAPL"])
    await fake.wait_until(lambda: fake.subscribed() == topics("AMZN", "MSFT"))
    await eventually(lambda: provider.status().unserved == {"TSLA": "symbol_limit"})
    await provider.unsubscribe(["TSLA"])
    assert provider.status().unserved == {}


# -- a connection that drops -----------------------------------------------------------------------------
async def test_a_dropped_connection_reconnects_reauthenticates_and_resubscribes(
    fake: FakePolygon, start: Start
) -> None:
    provider = await start("AAPL", "MSFT")
    batches = provider.quotes()
    await fake.wait_until(lambda: fake.subscribed() == topics("AAPL", "MSFT"))
    await fake.send([trade("AAPL", 190.0, 100)])
    assert [q.volume for q in await next_batch(batches)] == [100]

    fake.drop()  # mid-stream, without a closing handshake
    await fake.wait_until(  # (one session left: the dropped one is gone)
        lambda: len(fake.connections) == 2 and len(fake.sessions) == 1 and fake.subscribed() == topics("AAPL", "MSFT")
    )
    assert fake.auths == [KEY, KEY]
    await eventually(lambda: provider.status().connected)
    await fake.send([trade("MSFT", 410.0, 5), trade("AAPL", 191.0, 50)])
    batch = await next_batch(batches)
    assert [(q.symbol, q.price, q.volume) for q in batch] == [("MSFT", 410.0, 5), ("AAPL", 191.0, 150)]
    status = provider.status()
    assert (status.reconnects, status.error) == (1, None)


async def test_malformed_frames_and_events_are_skipped_and_the_stream_goes_on(fake: FakePolygon, start: Start) -> None:
    provider = await start("AAPL")
    batches = provider.quotes()
    await fake.wait_until(lambda: fake.subscribed() == topics("AAPL"))
    await fake.send_raw("not json")
    await fake.send_raw('{"ev": "T", "sym": "AAPL"')
    await fake.send_raw('[1, "T", null, {"ev": "T", "sym": ["AAPL"]}]')
    await fake.send([trade("AAPL", "190.0"), trade("AAPL", True), trade("AAPL", 190.0, ts=None)])
    await fake.send([trade("AAPL", "x"), trade("AAPL", 190.5, 10), nbbo("AAPL", 190.4, 190.6)])
    batch = await next_batch(batches)
    assert [(q.price, q.bid, q.ask, q.volume) for q in batch] == [(190.5, 190.5, 190.5, 10), (190.5, 190.4, 190.6, 10)]
    assert provider.status().connected
    assert provider.status().reconnects == 0


async def test_unsubscribe_stops_a_symbol(fake: FakePolygon, start: Start) -> None:
    provider = await start("AAPL", "MSFT")
    batches = provider.quotes()
    await fake.wait_until(lambda: fake.subscribed() == topics("AAPL", "MSFT"))
    await provider.unsubscribe(["MSFT"])
    await fake.wait_until(lambda: fake.subscribed() == topics("AAPL"))
    assert {"action": "unsubscribe", "params": "T.MSFT,Q.MSFT"} in fake.received
    # Events still on their way when the unsubscribe went out are dropped too.
    await fake.send([trade("MSFT", 410.0), trade("AAPL", 190.0), nbbo("MSFT", 409.0, 411.0)], every_symbol=True)
    assert [q.symbol for q in await next_batch(batches)] == ["AAPL"]


async def test_a_symbol_unsubscribed_while_its_closes_load_is_never_sent(fake: FakePolygon, start: Start) -> None:
    provider = await start("AAPL")
    await fake.wait_until(lambda: fake.subscribed() == topics("AAPL"))
    fake.snapshot_delay = 0.3
    subscribing = asyncio.create_task(provider.subscribe(["MSFT"]))
    await fake.wait_until(lambda: len(fake.snapshot_requests) == 2)  # subscribe() awaits MSFT's previous close
    await provider.unsubscribe(["MSFT"])
    async with asyncio.timeout(5):
        await subscribing
    fake.snapshot_delay = 0.0
    await provider.subscribe(["AMZN"])
    await fake.wait_until(lambda: fake.subscribed() == topics("AAPL", "AMZN"))
    assert not any("MSFT" in m["params"] for m in fake.received)


# -- configuration and helpers ---------------------------------------------------------------------------
def test_from_settings_refuses_an_empty_key_and_reads_the_urls() -> None:
    for empty in ("", "   "):
        with override_settings(POLYGON_API_KEY=empty), pytest.raises(ValueError, match="POLYGON_API_KEY"):
            PolygonProvider.from_settings()
    urls = {"POLYGON_STREAM_URL": "wss://delayed.polygon.io/stocks", "POLYGON_API_URL": "https://api.massive.com/"}
    with override_settings(POLYGON_API_KEY=KEY, **urls):
        provider = PolygonProvider.from_settings()
    assert (provider.name, provider.display_name) == ("polygon", "Polygon")
    assert (provider.api_key, provider.url, provider.api_url) == (KEY, "wss://delayed.polygon.io/stocks",
                                                                  "https://api.massive.com")  # fmt: skip


def test_refusal_reasons_follow_polygons_words() -> None:
    assert refusal_reason("not authorized") == "not_entitled"
    assert refusal_reason("Your plan doesn't include websocket access.") == "not_entitled"
    assert refusal_reason("Subscription limit reached for feed. Please remove some subscriptions.") == "symbol_limit"
    assert refusal_reason("invalid symbol") == "unknown_symbol"
