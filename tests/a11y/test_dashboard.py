"""The dashboard for screen readers, keyboards and other locales, in Chromium against real web and feed processes."""

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.a11y.conftest import World, signed_in_context

pytestmark = [pytest.mark.live, pytest.mark.browser]

DIGIT = re.compile(r"\d")
ANNOUNCE_SECONDS = 5
SAMPLE_SECONDS = 12
# "AAPL 189.20, +0.42 today; MSFT 410.05, -1.10 today.": the biggest moves, three symbols at most.
MOVE = r"[A-Z]+ [\d.,]+, [+\-−]?[\d.,]+ today"
ANNOUNCEMENT = re.compile(rf"({MOVE}; ){{0,2}}{MOVE}\.")
# Records each text the live region takes, with the page's clock (the observer is added through the
# DevTools protocol, which the page's Content-Security-Policy does not govern).
RECORD_ANNOUNCEMENTS = """() => {
  window.announcements = [];
  const region = document.getElementById("quotes-announcer");
  new MutationObserver(() => window.announcements.push([performance.now(), region.textContent]))
    .observe(region, { childList: true, characterData: true, subtree: true });
}"""


def open_dashboard(page: Page, world: World) -> None:
    page.goto(world.url(f"/?watchlist={world.watchlist_id}"))
    expect(page.locator("#stream-badge")).to_have_text("Simulated · live")
    expect(page.locator("#quotes tbody .price").last).to_have_text(DIGIT)


@pytest.fixture
def german_page(browser: Browser, world: World) -> Iterator[Page]:
    """A German viewer in Tokyo: a decimal comma, and a clock 13 or 14 hours ahead of New York's."""
    context = signed_in_context(browser, world, locale="de-DE", timezone_id="Asia/Tokyo")
    try:
        yield context.new_page()
    finally:
        context.close()


def test_price_moves_are_announced_politely_at_most_every_five_seconds(page: Page, world: World) -> None:
    open_dashboard(page, world)
    region = page.locator("#quotes-announcer")
    expect(region).to_have_attribute("aria-live", "polite")
    expect(region).to_have_attribute("role", "status")
    # The table's cells are not live regions: a screen reader would read every tick.
    expect(page.locator("#quotes [aria-live], #quotes [role=status], #quotes [role=alert]")).to_have_count(0)

    page.evaluate(RECORD_ANNOUNCEMENTS)
    page.wait_for_timeout(SAMPLE_SECONDS * 1000)
    announcements: list[tuple[float, str]] = page.evaluate("window.announcements")

    assert len(announcements) >= 2, announcements  # the prices ticked hundreds of times meanwhile
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(announcements)]
    assert min(gaps) >= ANNOUNCE_SECONDS * 1000 - 50, gaps  # a few ms of timer and observer rounding
    for _, text in announcements:
        assert ANNOUNCEMENT.fullmatch(text), text


def test_the_change_toggle_switches_absolute_and_percent_and_survives_a_reload(page: Page, world: World) -> None:
    open_dashboard(page, world)
    toggle = page.get_by_role("button", name="Show change in %")
    changes = page.locator("#quotes tbody .change")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#change-header")).to_have_text("Change")
    expect(changes.first).to_have_text(re.compile(r"^[+\-−]?[\d.,]+$"))

    toggle.focus()
    page.keyboard.press("Enter")  # from the keyboard

    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#change-header")).to_have_text("Change %")
    expect(changes.first).to_have_text(re.compile(r"%$"))

    page.reload()
    expect(page.locator("#quotes tbody .price").last).to_have_text(DIGIT)
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(changes.first).to_have_text(re.compile(r"^[+\-−]?[\d.,]+\s?%$"))

    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(changes.last).to_have_text(re.compile(r"^[+\-−]?[\d.,]+$"))


def test_the_quote_table_is_reachable_and_named_for_keyboards(page: Page, world: World) -> None:
    open_dashboard(page, world)
    region = page.get_by_role("region", name="Tech: live quotes")
    expect(region).to_have_attribute("tabindex", "0")
    expect(page.get_by_role("table", name="Tech: live quotes")).to_be_visible()
    expect(page.get_by_role("columnheader", name="Updated (New York time)")).to_be_visible()
    expect(page.get_by_role("rowheader", name="NVDA")).to_be_visible()

    page.get_by_role("button", name="Show change in %").focus()
    page.keyboard.press("Tab")  # the next stop after the toggle is the table's scrolling region

    expect(region).to_be_focused()


def test_a_german_viewer_sees_a_decimal_comma_and_new_york_times(german_page: Page, world: World) -> None:
    open_dashboard(german_page, world)
    prices = german_page.locator("#quotes tbody .price")
    expect(prices.first).to_have_text(re.compile(r"^\d{1,3}(\.\d{3})*,\d{2}$"))

    shown = german_page.locator("#quotes tbody .time").first.inner_text()
    new_york = datetime.now(UTC).astimezone(ZoneInfo("America/New_York"))
    # The quote's time in New York (24-hour German style), not the viewer's Tokyo time.
    assert shown in {(new_york - timedelta(seconds=s)).strftime("%H:%M:%S") for s in range(10)}, shown
