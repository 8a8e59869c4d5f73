"""A widget embedded on a customer's page, in Chromium, follows the market without a reload: its note
says "Market closed" when the exchange closes (the last prices stay) and the data's freshness again,
with quotes flowing, when it opens; all on the websocket it first opened.

The page, the organisation's host and the widget are those of test_browser's `world`; the feed is the
real one leading from a thread of this process, whose trading calendar's clock the test moves.
"""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import WebSocket, expect

from tests.live import chromium_page
from tests.streaming.market_support import (
    CHANGE_SHOWN_MS,
    TUESDAY_EVENING,
    WEDNESDAY_OPEN,
    MovableFeed,
    leading_from_a_thread,
)
from tests.widgets import test_browser
from tests.widgets.test_browser import WIDGET, World, price_cells, sees_live_quotes

pytestmark = [pytest.mark.live, pytest.mark.browser, pytest.mark.django_db]

world = test_browser.world  # the customer's site and the organisation's web process (a fixture: found by name)


@pytest.fixture(scope="module")
def feed(django_db_setup: None) -> Iterator[MovableFeed]:
    """The feed `world` waits for: this one leads from a thread, its clock on a Tuesday afternoon (open)."""
    with leading_from_a_thread() as movable:
        yield movable


def test_an_embedded_widget_says_market_closed_at_the_close_and_live_at_the_open(
    world: World, feed: MovableFeed
) -> None:
    with chromium_page() as page:
        sockets: list[WebSocket] = []
        page.on("websocket", lambda socket: sockets.append(socket))
        page.goto(world.allowed.url("/table.html"))
        sees_live_quotes(page)
        note = page.locator(f"{WIDGET} .foot > span:first-child")
        expect(note).to_have_text("Simulated data")
        page.evaluate("window.openedOnce = true")  # gone if the page reloads

        feed.clock.at_ms = TUESDAY_EVENING  # 17:00 New York
        expect(note).to_have_text("Market closed", timeout=CHANGE_SHOWN_MS)
        expect(price_cells(page)).to_have_count(3)
        for cell in price_cells(page).all():  # the last prices stand
            expect(cell).to_have_text(re.compile(r"\d"))

        feed.clock.at_ms = WEDNESDAY_OPEN + 60_000
        expect(note).to_have_text("Simulated data", timeout=CHANGE_SHOWN_MS)
        sees_live_quotes(page)  # quotes flow again

        assert page.evaluate("window.openedOnce") is True
        assert len(sockets) == 1, [socket.url for socket in sockets]  # its first websocket, never another
        assert f"/ws/stock-market/?widget={world.widgets['table'].public_id}&" in sockets[0].url
