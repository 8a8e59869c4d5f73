"""The live dashboard in Debian's Chromium against real web and feed processes (SPEC's whole path)."""

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.live import (
    ARTIFACTS,
    LiveServer,
    chromium_page,
    feed_processes,
    leader_among,
    record_figure,
    stream_environment,
)
from tests.streaming import live_support
from tests.streaming.conftest import Committed, Tenant
from tests.streaming.conftest import committed as committed_rows

pytestmark = [pytest.mark.live, pytest.mark.browser]

# The live fixtures (pytest finds fixtures among a module's globals).
db, feed, web = live_support.db, live_support.feed, live_support.web
committed = committed_rows

PRICE_CHANGE_SECONDS = 5


def tenant_url(web: LiveServer, tenant: Tenant, path: str) -> str:
    return web.url(path, host=tenant.host)


def log_in(page: Page, web: LiveServer, tenant: Tenant) -> None:
    page.goto(tenant_url(web, tenant, "/accounts/login/"))
    page.fill("#id_login", tenant.owner.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text(tenant.organisation.name)


def create_watchlist(page: Page, web: LiveServer, tenant: Tenant, name: str, symbols: str) -> None:
    page.goto(tenant_url(web, tenant, "/watchlists/"))
    page.fill("#id_name", name)
    page.get_by_role("button", name="Create").click()
    page.fill("#id_symbols", symbols)
    page.get_by_role("button", name="Add", exact=True).click()


def test_a_member_watches_a_new_watchlist_move_live(committed: Committed, feed: object, web: LiveServer) -> None:
    tenant = committed.tenant_sync("pro")
    with chromium_page() as page:
        log_in(page, web, tenant)
        create_watchlist(page, web, tenant, "Tech", "AAPL, MSFT, NVDA")
        expect(page.locator("body")).to_contain_text("NVDA")

        page.goto(tenant_url(web, tenant, "/"))
        expect(page.locator("#stream-badge")).to_have_text("Simulated · live")
        rows = page.locator("#quotes tbody tr")
        expect(rows).to_have_count(3)
        for symbol in ("AAPL", "MSFT", "NVDA"):
            expect(page.locator(f'tr[data-symbol="{symbol}"] .price')).to_have_text(re.compile(r"\d"))
        first = {s: page.locator(f'tr[data-symbol="{s}"] .price').inner_text() for s in ("AAPL", "MSFT", "NVDA")}
        # Within 5 seconds at least one of the three prices moves on screen.
        page.wait_for_function(
            """(first) => Object.entries(first).some(([symbol, price]) =>
                document.querySelector(`tr[data-symbol="${symbol}"] .price`).textContent !== price)""",
            arg=first,
            timeout=PRICE_CHANGE_SECONDS * 1000,
        )
        # The feed fills in the day's minute bars within a second of a symbol's first watch: a page opened
        # after that starts its intraday sparklines from their closes, not from the seconds since it opened.
        spark = page.locator('tr[data-symbol="AAPL"] .spark polyline')
        for _ in range(10):
            page.reload()
            if len((spark.get_attribute("points") or "").split()) > 300:
                break
            page.wait_for_timeout(500)
        expect(spark).to_have_attribute("points", re.compile(r"^(\S+ ){300,}\S+$"))
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
        expect(page.locator('tr[data-symbol="AAPL"] .price')).to_be_visible()
    record_figure("dashboard", "three watched prices changed on screen within 5 s")


def test_an_open_dashboard_follows_edits_of_its_watchlist(committed: Committed, feed: object, web: LiveServer) -> None:
    tenant = committed.tenant_sync("pro")
    with chromium_page() as page:
        log_in(page, web, tenant)
        create_watchlist(page, web, tenant, "Tech", "AAPL, MSFT")
        editor_url = page.url
        page.goto(tenant_url(web, tenant, "/"))
        expect(page.locator("#stream-badge")).to_have_text("Simulated · live")
        expect(page.locator("#quotes tbody tr")).to_have_count(2)

        browser = page.context.browser
        assert browser is not None
        editor = browser.new_context().new_page()  # the owner edits the watchlist in another window
        log_in(editor, web, tenant)
        editor.goto(editor_url)
        editor.fill("#id_symbols", "NVDA")
        editor.get_by_role("button", name="Add", exact=True).click()
        expect(editor.locator("body")).to_contain_text("Added NVDA")
        expect(page.locator('tr[data-symbol="NVDA"]')).to_have_count(1, timeout=2000)
        expect(page.locator('tr[data-symbol="NVDA"] .price')).to_have_text(re.compile(r"\d"), timeout=5000)

        editor.get_by_role("button", name="Remove MSFT").click()
        expect(page.locator('tr[data-symbol="MSFT"]')).to_have_count(0, timeout=2000)
        expect(page.locator("#quotes tbody tr")).to_have_count(2)
        expect(page.locator("#stream-badge")).to_have_text("Simulated · live")  # no reload, no reconnect


def test_a_dashboard_with_nothing_to_stream_says_so(committed: Committed, web: LiveServer) -> None:
    tenant = committed.tenant_sync("pro")
    with chromium_page() as page:
        log_in(page, web, tenant)
        expect(page.locator("#stream-badge")).to_have_text("Nothing to stream")
        page.goto(tenant_url(web, tenant, "/watchlists/"))
        page.fill("#id_name", "Empty")
        page.get_by_role("button", name="Create").click()
        page.goto(tenant_url(web, tenant, "/"))
        expect(page.locator("#stream-badge")).to_have_text("Nothing to stream")
        expect(page.get_by_role("link", name="Add symbols")).to_be_visible()


def test_the_free_plan_says_the_symbol_limit_is_reached(committed: Committed, feed: object, web: LiveServer) -> None:
    tenant = committed.tenant_sync("free")  # 5 symbols per stream
    with chromium_page() as page:
        log_in(page, web, tenant)
        create_watchlist(page, web, tenant, "Mine", "AAPL, MSFT, NVDA, AMZN, GOOGL")
        page.fill("#id_symbols", "TSLA")
        page.get_by_role("button", name="Add", exact=True).click()

        expect(page.locator("body")).to_contain_text(re.compile(r"limit", re.IGNORECASE))
        expect(page.get_by_role("link", name=re.compile("plans", re.IGNORECASE)).first).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "symbol-limit.png"), full_page=True)

        page.goto(tenant_url(web, tenant, "/"))
        expect(page.locator("#stream-badge")).to_have_text("Simulated · delayed by 15 min")
        # The simulated feed has history: 15-minute-old prices at once, no "delayed data starts at".
        expect(page.locator("#quotes tbody .price").first).to_have_text(re.compile(r"\d"), timeout=5_000)
        expect(page.locator("#stream-notice")).to_be_hidden()


def test_a_free_plan_dashboard_shows_prices_at_once_also_after_the_feed_leader_is_killed(
    committed: Committed, db: None, web: LiveServer
) -> None:
    tenant = committed.tenant_sync("free")  # 15 minutes delayed
    with feed_processes(2, **stream_environment()) as feeds:
        leader = leader_among(feeds)
        with chromium_page() as page:
            log_in(page, web, tenant)
            create_watchlist(page, web, tenant, "Mine", "AAPL, MSFT")
            page.goto(tenant_url(web, tenant, "/"))
            expect(page.locator("#quotes tbody .price").first).to_have_text(re.compile(r"\d"), timeout=5_000)

            leader.process.kill()  # no goodbye: the lock lapses
            standby = next(feed for feed in feeds if feed is not leader)
            standby.wait_leading()
            opened = time.monotonic()
            page.reload()
            prices = page.locator("#quotes tbody .price")
            expect(prices.first).to_have_text(re.compile(r"\d"), timeout=5_000)
            expect(prices.last).to_have_text(re.compile(r"\d"), timeout=5_000)
            # Not only the cached snapshot: the new leader sends fresh 15-minute-old quotes.
            quote_time = page.locator("#quotes tbody .time").first
            shown = quote_time.inner_text()
            expect(quote_time).not_to_have_text(shown, timeout=5_000)
            record_figure("free plan after failover", f"fresh prices {time.monotonic() - opened:.2f} s after opening")


def test_a_fired_alert_shows_on_the_open_dashboard(committed: Committed, feed: object, web: LiveServer) -> None:
    import threading

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from streaming.groups import control_group

    tenant = committed.tenant_sync("pro")
    alert = {
        "id": 1,
        "name": "Apple breakout",
        "symbol": "AAPL",
        "condition": "price above 150",
        "price": 151.25,
        "ts": 1,
    }

    def fire() -> None:  # from another thread: Playwright's loop runs in this one
        layer = get_channel_layer()
        assert layer is not None
        async_to_sync(layer.group_send)(control_group(tenant.schema), {"type": "alert.fired", "alert": alert})

    with chromium_page() as page:
        log_in(page, web, tenant)
        create_watchlist(page, web, tenant, "Tech", "AAPL")
        page.goto(tenant_url(web, tenant, "/"))
        expect(page.locator('tr[data-symbol="AAPL"] .price')).to_have_text(re.compile(r"\d"))
        thread = threading.Thread(target=fire)
        thread.start()
        thread.join(10)
        notice = page.locator("#alert-notice")
        expect(notice).to_contain_text("Alert “Apple breakout”: AAPL price above 150 at 151.25.")
        expect(notice.get_by_role("link", name="Alert history")).to_have_attribute("href", "/alerts/history/")
