"""The alert engine on a real Feed: replay and simulated quotes, a failover, delayed plans, in-app and e-mail.

Each test runs the feed (leader election, watch registry, publishing, observers) in its event loop with
an AlertEngine as its observer, against the test database and Redis. The replay's crossings of 105 are
known in advance (tests/alerts/conftest.py), so each test knows when an alert must fire.
"""

import asyncio
import time
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers

from accounts.models import User
from alerts.engine import AlertEngine
from alerts.models import AlertChannel, AlertCondition, AlertEvent
from alerts.services import alert_email_choose
from streaming.feed import LeadingObserver
from streaming.groups import control_group
from streaming.observers import feed_observers
from streaming.providers import MarketDataProvider, SimulatedProvider
from streaming.quotes import Quote
from tests.alerts.live import (
    DOWN_AT_MS,
    PERIOD_MS,
    UP_AT_MS,
    Running,
    alert_in,
    engine_evaluating,
    engine_ready,
    next_crossing,
    now_ms,
    replay_provider,
    sleep_until,
    until,
)
from tests.streaming.conftest import Committed, Tenant
from tests.watchlists.conftest import inside

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("clean_alert_state")]


def price_at(provider: MarketDataProvider, ts: int, symbol: str = "AAPL") -> float:
    quote = provider.quote_at(symbol, ts)
    assert quote is not None
    return quote.price


BREAKOUT_SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM")


def breakout(path: list[tuple[int, float]], *, after: int) -> tuple[int, float, str] | None:
    """The first point from `after` on outside the range of every point before it: (ts, price, condition)."""
    high = max(p for _, p in path[:after])
    low = min(p for _, p in path[:after])
    for t, p in path[after:]:
        if p > high:
            return t, p, AlertCondition.PRICE_ABOVE
        if p < low:
            return t, p, AlertCondition.PRICE_BELOW
    return None


def paths_of(provider: MarketDataProvider, start: int, span_ms: int) -> dict[str, list[tuple[int, float]]]:
    """The simulated price of each breakout symbol at every millisecond from `start` on."""
    return {s: [(t, price_at(provider, t, s)) for t in range(start, start + span_ms)] for s in BREAKOUT_SYMBOLS}


def events_of(tenant: Tenant, **filters: Any) -> list[AlertEvent]:
    with inside(tenant.organisation):
        return list(AlertEvent.objects.filter(**filters).order_by("quote_ts"))


async def test_a_replay_crossing_fires_exactly_once_per_cooldown(committed: Committed, running: Running) -> None:
    tenant = await committed.tenant("pro")
    hour = await alert_in(tenant, name="Once an hour", cooldown_seconds=3600)
    every_second = await alert_in(tenant, name="Every second", cooldown_seconds=1)
    # Nobody streams AAPL: the engine's own watch is what makes the feed quote it.
    _, engine = running.start(replay_provider())
    await engine_evaluating(engine)

    first = next_crossing(now_ms() + 300, UP_AT_MS)
    second = first + 2000
    frequent = await until(
        lambda: (rows := events_of(tenant, alert_id=every_second)) and rows[-1].quote_ts >= second - 100 and rows,
        (second - now_ms()) / 1000 + 5,
        "the second crossing's event",
    )

    hourly = await sync_to_async(events_of)(tenant, alert_id=hour)
    assert len(hourly) == 1, "a later crossing inside the cooldown fires nothing"
    watched = [round((e.quote_ts - first) / 1000) for e in frequent if e.quote_ts >= first - 100]
    assert watched == [0, 2], "one event per crossing, 2 s apart"
    assert len(frequent) - len(watched) <= 1  # at most one crossing between the engine's start and `first`
    for event in (*hourly, *frequent):
        assert 0 <= event.quote_ts - round(event.quote_ts / 2000) * 2000 - UP_AT_MS <= 100  # just after 105
        assert event.price >= 105 > price_at(replay_provider(), event.quote_ts - 60)
        assert event.description == "crossed above 105.00"
    assert engine.index.suppressed >= 1


async def test_simulated_quotes_fire_where_their_path_first_breaks_out(committed: Committed, running: Running) -> None:
    tenant = await committed.tenant("pro")
    provider = SimulatedProvider(ticks_per_second=400, seed=7)
    _, engine = running.start(provider)
    await engine_ready(engine)
    # The level: from now on, the reproducible path of one of these symbols goes to a new high (or low)
    # for the first time at `crossing_ts`, 2 s or more from now (the earliest such symbol is taken):
    # the engine must catch it there, and not before.
    # The paths are worked out on a thread: 80,000 prices on the event loop would stall the feed
    # itself (seconds on a busy machine), and "2 s from now" is counted from when they are known.
    start = now_ms()
    paths = await asyncio.to_thread(paths_of, provider, start, 12_000)
    after = now_ms() - start + 2000
    found = sorted((crossing, s) for s, path in paths.items() if (crossing := breakout(path, after=after)))
    assert found, "no symbol breaks out within 12 s"
    (crossing_ts, level, condition), symbol = found[0]
    before = [p for t, p in paths[symbol] if t < crossing_ts]
    await alert_in(tenant, symbol=symbol, level=Decimal(str(level)), condition=condition)
    await until(lambda: engine.index.evaluated, 3, f"the engine's first {symbol} quote")  # loaded, watched, quoted
    assert now_ms() < crossing_ts, f"the engine evaluates {symbol} before the crossing"

    [event] = await until(lambda: events_of(tenant), (crossing_ts - now_ms()) / 1000 + 5, "the event")

    assert crossing_ts - 10 <= event.quote_ts <= crossing_ts + 200
    assert event.price == price_at(provider, event.quote_ts, symbol)
    if condition == AlertCondition.PRICE_ABOVE:
        assert event.price >= level > max(before)
    else:
        assert event.price <= level < min(before)


async def test_a_failover_in_the_middle_fires_each_crossing_once(committed: Committed, running: Running) -> None:
    tenant = await committed.tenant("pro")
    up = await alert_in(tenant, name="Up", cooldown_seconds=3600)
    leader, leader_engine = running.start(replay_provider())
    await engine_evaluating(leader_engine)
    _, standby_engine = running.start(replay_provider())

    [rose] = await until(lambda: events_of(tenant, alert_id=up), 5, "the leader's event")
    # Made now, so that the first fall both engines know of is the one after this rise (a second later).
    down = await alert_in(tenant, name="Down", condition=AlertCondition.PRICE_BELOW, cooldown_seconds=3600)
    fall = next_crossing(rose.quote_ts, DOWN_AT_MS)
    # The leader stops just before the price falls through 105: the standby takes over around then.
    await sleep_until(fall - 150)
    leader.stop()
    await until(lambda: standby_engine.ready, 5, "the standby's take-over")
    [fell] = await until(lambda: events_of(tenant, alert_id=down), 5, "the fall's event")
    # The standby then sees a rise and a fall of its own, inside the cooldowns.
    await until(lambda: standby_engine.index.suppressed >= 2, 6, "the next crossings")

    assert fell.quote_ts >= fall
    assert len(await sync_to_async(events_of)(tenant, alert_id=up)) == 1
    assert len(await sync_to_async(events_of)(tenant, alert_id=down)) == 1
    assert (leader_engine.fired, standby_engine.fired) == (1, 1)


async def test_an_engine_that_takes_over_sees_a_crossing_made_while_nobody_led(committed: Committed) -> None:
    tenant = await committed.tenant("pro")
    await alert_in(tenant)
    engine = AlertEngine()
    engine.start()
    try:
        await until(lambda: engine.index.books, 5, "the engine's index")
        # The previous leader evaluated 104 last and stored it; then nobody led for a while.
        await engine._store.prices_store(0, {"AAPL": (104.0, 4.0)})
        leading = asyncio.create_task(engine.lead(replay_provider()))  # this process now leads
        await until(lambda: engine.ready, 5, "the take-over")

        stamp = now_ms()
        await engine.observe(0, {"AAPL": Quote("AAPL", 106.0, 105.9, 106.1, 1, 6.0, 6.0, stamp)})

        [event] = await until(lambda: events_of(tenant), 5, "the event")
        assert (event.price, event.quote_ts) == (106.0, stamp)
        leading.cancel()
    finally:
        await engine.close()


async def test_a_fired_alert_reaches_dashboards_and_the_members_who_chose_e_mail(
    committed: Committed, running: Running, mailoutbox: list[Any]
) -> None:
    tenant = await committed.tenant("pro")
    await committed.member(tenant, "chose@example.com")
    await committed.member(tenant, "did-not@example.com")
    alert_id = await alert_in(tenant, name="Mail me", channels=[AlertChannel.IN_APP, AlertChannel.EMAIL])

    def choose() -> None:
        with inside(tenant.organisation):
            chooser = User.objects.get(email="chose@example.com")
            alert_email_choose(organisation=tenant.organisation, alert_id=alert_id, user_id=chooser.pk, chosen=True)

    await sync_to_async(choose)()
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    channel = await layer.new_channel()
    await layer.group_add(control_group(tenant.schema), channel)
    _, engine = running.start(replay_provider())
    await engine_evaluating(engine)
    crossing = next_crossing(now_ms() + 300, UP_AT_MS)

    async with asyncio.timeout(crossing / 1000 - time.time() + 6):
        message = await layer.receive(channel)
    await layer.group_discard(control_group(tenant.schema), channel)

    assert message["type"] == "alert.fired"
    assert set(message["alert"]) == {"id", "name", "symbol", "condition", "price", "ts"}
    assert message["alert"]["id"] == alert_id
    assert (message["alert"]["symbol"], message["alert"]["condition"]) == ("AAPL", "crossed above 105.00")
    assert 0 <= (message["alert"]["ts"] - UP_AT_MS) % PERIOD_MS <= 100  # just after a crossing
    [event] = await until(lambda: [e for e in events_of(tenant) if e.emails_sent], 5, "the e-mails")
    assert event.emails_sent == 2
    assert sorted(m.to[0] for m in mailoutbox) == ["chose@example.com", tenant.owner.email]
    assert all(m.subject == "AAPL crossed above 105.00: Mail me" for m in mailoutbox)
    assert "/alerts/history/" in mailoutbox[0].body


async def test_a_delayed_plan_fires_on_delayed_quotes(committed: Committed, running: Running, settings: Any) -> None:
    settings.STREAM_DELAY_MINUTE_SECONDS = 0.1  # the free plan's 15 minutes: 1.5 s
    delay_ms = 1500
    tenant = await committed.tenant("free")
    await alert_in(tenant)
    # Delayed quotes come once a second: a 4-second period has two of them on each side of every crossing.
    provider = replay_provider(period_ms=4000)
    _, engine = running.start(provider)
    await engine_evaluating(engine)

    await until(lambda: events_of(tenant), 12, "the delayed event")

    [event] = await sync_to_async(events_of)(tenant)
    assert event.delay_minutes == 15
    fired_ms = int(event.fired_at.timestamp() * 1000)
    assert delay_ms <= fired_ms - event.quote_ts <= delay_ms + 1500, "the quote is the delay old"
    assert event.price == price_at(provider, event.quote_ts) >= 105


async def test_every_feed_process_runs_an_alert_engine_that_works_while_it_leads() -> None:
    engines = [observer for observer in feed_observers() if isinstance(observer, AlertEngine)]

    assert len(engines) == 1
    assert isinstance(engines[0], LeadingObserver)
    await engines[0].close()
