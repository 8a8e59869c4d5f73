"""axe-core (WCAG 2.x A/AA and best practices) in Chromium finds nothing on the product's pages.

Real web and feed processes; each page is checked once what it shows is on screen: quotes streaming
on the dashboard, the live preview's Shadow DOM on a widget's page, both widgets on a customer's page.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.a11y.axe import assert_no_violations
from tests.a11y.conftest import World

pytestmark = [pytest.mark.live, pytest.mark.browser]

DIGIT = re.compile(r"\d")
WIDGET = "[data-tickerdeck-widget]"


def test_the_pricing_page_has_no_violations(page: Page, world: World) -> None:
    page.goto(world.web.url("/pricing/"))
    expect(page.locator(".plan").first).to_be_visible()
    assert_no_violations(page, "the pricing page")


def test_the_dashboard_streaming_quotes_has_no_violations(page: Page, world: World) -> None:
    page.goto(world.url(f"/?watchlist={world.watchlist_id}"))
    expect(page.locator("#stream-badge")).to_have_text("Simulated · live")
    expect(page.locator("#quotes tbody .price").last).to_have_text(DIGIT)
    assert_no_violations(page, "the dashboard")


def test_the_watchlists_index_has_no_violations(page: Page, world: World) -> None:
    page.goto(world.url("/watchlists/"))
    expect(page.get_by_role("link", name="Tech")).to_be_visible()
    assert_no_violations(page, "the watchlists index")


def test_a_watchlist_page_has_no_violations(page: Page, world: World) -> None:
    page.goto(world.url(f"/watchlists/{world.watchlist_id}/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Tech")
    assert_no_violations(page, "a watchlist's page")


def test_the_billing_page_has_no_violations(page: Page, world: World) -> None:
    page.goto(world.url("/billing/"))
    expect(page.get_by_role("button", name="Upgrade to Team")).to_be_visible()
    assert_no_violations(page, "the billing page")


def test_the_widgets_index_has_no_violations(page: Page, world: World) -> None:
    page.goto(world.url("/widgets/"))
    expect(page.get_by_role("link", name="Quotes")).to_be_visible()
    assert_no_violations(page, "the widgets index")


def test_a_widget_page_with_its_live_preview_has_no_violations(page: Page, world: World) -> None:
    page.goto(world.url(f"/widgets/{world.widget_id}/"))
    expect(page.locator(f"{WIDGET} tbody td").first).to_have_text(DIGIT)
    assert_no_violations(page, "a widget's page")


def test_widgets_on_a_customer_page_have_no_violations(page: Page, world: World) -> None:
    page.goto(world.customer.origin + "/")
    expect(page.locator(f"{WIDGET} tbody td").first).to_have_text(DIGIT)
    expect(page.locator(f"{WIDGET} .item").first).to_contain_text(DIGIT)
    assert_no_violations(page, "a customer's page with a quote table and a dark ticker tape")
