"""MARKET_DATA_PROVIDER picks a provider; a replay's unknown symbols reach the dashboard as not served."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import vega_datasets
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings

from streaming.feed import Feed
from streaming.providers import PROVIDERS, provider_create
from streaming.providers.replay import ReplayDataError, ReplayProvider
from streaming.state import stream_state
from tests.streaming import conftest as streaming_fixtures
from tests.streaming.conftest import Committed, connect, receive, receive_until

STOCKS = Path(vega_datasets.__file__).parent / "_data" / "stocks.csv"  # MSFT AMZN IBM GOOG AAPL, monthly

committed, hub_cleanup = streaming_fixtures.committed, streaming_fixtures.hub_cleanup


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("alpaca", "ALPACA_API_KEY_ID"),
        ("finnhub", "FINNHUB_API_KEY"),
        ("polygon", "POLYGON_API_KEY"),
        ("replay", "REPLAY_PATH"),
    ],
)
def test_a_vendor_without_its_key_is_refused_naming_the_variable(settings: Settings, name: str, missing: str) -> None:
    for variable in ("ALPACA_API_KEY_ID", "ALPACA_API_SECRET_KEY", "FINNHUB_API_KEY", "POLYGON_API_KEY", "REPLAY_PATH"):
        setattr(settings, variable, "")
    assert name in PROVIDERS
    with pytest.raises(ValueError, match=missing):
        provider_create(name)


def test_run_feed_refuses_a_bad_replay_file_before_streaming(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "AAPL.csv"
    bad.write_text("date,close\n2024-01-02,187.1\n2024-01-03,oops\n")
    settings.REPLAY_PATH = str(bad)
    with pytest.raises(CommandError, match=r"AAPL\.csv.*line 3"):
        call_command("run_feed", "--provider", "replay")


def test_replay_is_chosen_by_name(settings: Settings) -> None:
    settings.REPLAY_PATH = str(STOCKS)
    provider = provider_create("replay")
    assert isinstance(provider, ReplayProvider)
    assert provider.has_history
    settings.REPLAY_PATH = str(STOCKS.parent / "missing.csv")
    with pytest.raises(ReplayDataError):
        provider_create("replay")


@pytest.fixture
async def replay_feed(hub_cleanup: None) -> AsyncIterator[Feed]:
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    running = Feed(replay(), stream_state(), layer)
    task = asyncio.create_task(running.run())
    yield running
    running.stop()
    async with asyncio.timeout(10):
        await task


def replay() -> ReplayProvider:
    from streaming.providers.replay import load_bars

    return ReplayProvider(load_bars(STOCKS), speed=86_400, ticks_per_second=200)


@pytest.mark.asyncio
async def test_a_symbol_the_replay_lacks_is_shown_as_not_served(committed: Committed, replay_feed: Feed) -> None:
    tenant = await committed.tenant("pro")
    ws = connect(tenant.host, session=tenant.session, query="symbols=AAPL,NVDA")
    await ws.connect()
    await receive(ws)
    quotes = await receive_until(ws, "quotes", within=3)
    assert {q["symbol"] for q in quotes["quotes"]} == {"AAPL"}
    for _ in range(50):  # the leader's status names NVDA (stored each second)
        status = await stream_state().feed_status()
        if status and "NVDA" in status["unserved"]:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.1)  # the web side reads the status at most once a second
    again = connect(tenant.host, session=tenant.session, query="symbols=AAPL,NVDA")
    await again.connect()
    snapshot = await receive(again)
    assert snapshot["unserved"] == [{"symbol": "NVDA", "reason": "unknown_symbol"}]
    assert snapshot["simulated"] is False
    await ws.disconnect()
    await again.disconnect()
