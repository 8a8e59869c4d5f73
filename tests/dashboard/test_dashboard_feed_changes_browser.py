"""An open dashboard in Debian's Chromium follows the feed without reloading: "Market closed" when the
exchange closes and "Live" when it opens, and "Not served" for a row the source stops serving."""

import re
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.dashboard.test_dashboard_browser import create_watchlist, log_in, tenant_url
from tests.live import LiveServer, chromium_page
from tests.streaming import live_support
from tests.streaming.conftest import Committed
from tests.streaming.conftest import committed as committed_rows
from tests.streaming.market_support import (
    CHANGE_SHOWN_MS,
    TUESDAY_EVENING,
    WEDNESDAY_OPEN,
    MovableFeed,
    leading_from_a_thread,
)

pytestmark = [pytest.mark.live, pytest.mark.browser]

db, web = live_support.db, live_support.web
committed = committed_rows


@pytest.fixture
def movable_feed(db: None) -> Iterator[MovableFeed]:
    with leading_from_a_thread() as movable:
        yield movable


@contextmanager
def open_dashboard(committed: Committed, web: LiveServer) -> Iterator[Page]:
    """A new organisation's owner watching AAPL and MSFT on the dashboard, prices shown; afterwards, the
    page is the one first opened (no reload) on its first websocket (no reconnect)."""
    tenant = committed.tenant_sync("pro")
    with chromium_page() as page:
        log_in(page, web, tenant)
        create_watchlist(page, web, tenant, "Tech", "AAPL, MSFT")
        sockets: list[object] = []
        page.on("websocket", lambda socket: sockets.append(socket))
        page.goto(tenant_url(web, tenant, "/"))
        for symbol in ("AAPL", "MSFT"):
            expect(page.locator(f'tr[data-symbol="{symbol}"] .price')).to_have_text(re.compile(r"\d"))
        page.evaluate("window.openedOnce = true")  # gone if the page reloads
        yield page
        assert page.evaluate("window.openedOnce") is True
        assert len(sockets) == 1


def test_an_open_dashboard_says_market_closed_at_the_close_and_live_at_the_open(
    committed: Committed, movable_feed: MovableFeed, web: LiveServer
) -> None:
    with open_dashboard(committed, web) as page:
        badge, notice = page.locator("#stream-badge"), page.locator("#stream-notice")
        expect(badge).to_have_text("Simulated · live")

        movable_feed.clock.at_ms = TUESDAY_EVENING  # 17:00 New York
        expect(badge).to_have_text("Market closed", timeout=CHANGE_SHOWN_MS)
        expect(notice).to_be_visible()
        expect(notice).to_contain_text("The market is closed: these are the last prices")

        movable_feed.clock.at_ms = WEDNESDAY_OPEN + 60_000
        expect(badge).to_have_text("Simulated · live", timeout=CHANGE_SHOWN_MS)
        expect(notice).to_be_hidden()
        aapl = page.locator('tr[data-symbol="AAPL"] .time')
        shown = aapl.inner_text()
        expect(aapl).not_to_have_text(shown, timeout=CHANGE_SHOWN_MS)  # quotes flow again


def test_an_open_dashboard_shows_then_clears_not_served_for_a_row(
    committed: Committed, movable_feed: MovableFeed, web: LiveServer
) -> None:
    with open_dashboard(committed, web) as page:
        msft, aapl = page.locator('tr[data-symbol="MSFT"]'), page.locator('tr[data-symbol="AAPL"]')

        movable_feed.provider.unserved = {"MSFT": "symbol_limit"}
        expect(msft.locator(".price")).to_contain_text("Not served", timeout=CHANGE_SHOWN_MS)
        expect(msft).to_have_class(re.compile(r"\brow--unserved\b"))
        expect(msft.locator(".price")).to_have_attribute("title", re.compile("symbols the market data plan allows"))
        expect(aapl).not_to_have_class(re.compile(r"\brow--unserved\b"))
        expect(aapl.locator(".price")).to_have_text(re.compile(r"^[\d.,\s]+$"))

        movable_feed.provider.unserved = {}
        expect(msft).not_to_have_class(re.compile(r"\brow--unserved\b"), timeout=CHANGE_SHOWN_MS)
        expect(msft.locator(".price")).to_have_text(re.compile(r"^[\d.,\s]+$"))
        expect(msft.locator(".price")).not_to_have_attribute("title", re.compile("."))
        time_cell = msft.locator(".time")
        shown = time_cell.inner_text()
        expect(time_cell).not_to_have_text(shown, timeout=CHANGE_SHOWN_MS)  # its quotes flow again


def test_a_quote_that_arrives_after_the_not_served_notice_does_not_cover_it(
    committed: Committed, movable_feed: MovableFeed, web: LiveServer
) -> None:
    """Quotes and notices reach the page on different paths (the organisation's quote and control
    channels), so a quote sent just before the source stopped serving a symbol may arrive after the
    notice. Here the notice is injected into the page's websocket while the symbol's quotes keep
    flowing: the row keeps saying "Not served", and shows the latest price once served again."""
    tenant = committed.tenant_sync("pro")
    with chromium_page() as page:
        log_in(page, web, tenant)
        create_watchlist(page, web, tenant, "Tech", "AAPL, MSFT")
        routes: list[WebSocketRoute] = []

        def through(route: WebSocketRoute) -> None:
            route.connect_to_server()  # everything both ways, as without the route
            routes.append(route)

        page.route_web_socket(re.compile(r"/ws/"), through)
        page.goto(tenant_url(web, tenant, "/"))
        msft = page.locator('tr[data-symbol="MSFT"]')
        expect(msft.locator(".price")).to_have_text(re.compile(r"\d"))
        [route] = routes

        route.send(
            orjson.dumps({"type": "unserved", "unserved": [{"symbol": "MSFT", "reason": "symbol_limit"}]}).decode()
        )
        expect(msft.locator(".price")).to_contain_text("Not served")
        time_cell = msft.locator(".time")
        shown = time_cell.inner_text()
        expect(time_cell).not_to_have_text(shown, timeout=CHANGE_SHOWN_MS)  # MSFT quotes still arrive…
        expect(msft.locator(".price")).to_contain_text("Not served")  # …and do not cover the notice
        expect(msft).to_have_class(re.compile(r"\brow--unserved\b"))

        route.send(orjson.dumps({"type": "unserved", "unserved": []}).decode())
        expect(msft).not_to_have_class(re.compile(r"\brow--unserved\b"))
        expect(msft.locator(".price")).to_have_text(re.compile(r"^[\d.,\s]+$"))
