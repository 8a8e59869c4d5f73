"""Watchlists in a real browser against a real server: create, autocomplete, add, reorder, remove."""

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from accounts.services import owner_get_or_create
from billing.models import Plan
from tenants.models import Organisation
from tenants.services.organisations import organisation_create
from tests.conftest import PASSWORD
from tests.live import ARTIFACTS, LiveServer, chromium_page, uvicorn_server

pytestmark = [pytest.mark.live, pytest.mark.browser, pytest.mark.django_db]


@pytest.fixture(scope="module")
def server(django_db_setup: None) -> Iterator[LiveServer]:
    with uvicorn_server() as live:
        yield live


@pytest.fixture(scope="module")
def organisation(django_db_setup: None, django_db_blocker: Any) -> Iterator[Organisation]:
    """A committed organisation on the Pro plan (the server reads it from another process); removed at the end."""
    slug = f"wl-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        owner = owner_get_or_create(email=f"owner@{slug}.example", password=PASSWORD)
        created = organisation_create(name="Browser Fund", slug=slug, owner=owner, plan=Plan.objects.get(slug="pro"))
    yield created
    with django_db_blocker.unblock():
        created.delete()  # auto_drop_schema: its schema (and watchlists) go too
        User.objects.filter(pk=owner.pk).delete()


def log_in(page: Page, server: LiveServer, organisation: Organisation) -> None:
    host = f"{organisation.slug}.localhost"
    page.goto(server.url("/accounts/login/?next=/watchlists/", host=host))
    page.fill("#id_login", f"owner@{organisation.slug}.example")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(server.url("/watchlists/", host=host))


def symbols_in_table(page: Page) -> list[str]:
    return page.locator("table.symbols tbody td strong").all_inner_texts()


def test_an_owner_builds_a_watchlist_with_the_autocomplete(server: LiveServer, organisation: Organisation) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium_page() as page:
        log_in(page, server, organisation)
        page.fill("#id_name", "Tech leaders")
        page.get_by_role("button", name="Create").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Tech leaders")

        field = page.get_by_role("combobox", name="Tickers")
        field.press_sequentially("appl", delay=30)
        suggestions = page.get_by_role("listbox")
        expect(suggestions.get_by_role("option").first).to_contain_text("AAPL Apple Inc.")
        field.press("ArrowDown")
        field.press("Enter")
        expect(field).to_have_value("AAPL, ")
        field.press_sequentially("microsoft", delay=30)
        expect(suggestions.get_by_role("option").first).to_contain_text("MSFT Microsoft")
        page.screenshot(path=str(ARTIFACTS / "watchlist_autocomplete.png"))
        suggestions.get_by_role("option").first.dispatch_event("mousedown")
        expect(field).to_have_value("AAPL, MSFT, ")
        page.get_by_role("button", name="Add", exact=True).click()

        expect(page.locator(".message--success")).to_have_text("Added AAPL, MSFT.")
        assert symbols_in_table(page) == ["AAPL", "MSFT"]
        page.get_by_role("button", name="Move MSFT up").click()
        expect(page.locator("table.symbols tbody tr").first).to_contain_text("MSFT")
        assert symbols_in_table(page) == ["MSFT", "AAPL"]
        page.get_by_role("button", name="Remove AAPL").click()
        expect(page.locator(".message--success")).to_have_text("Removed AAPL.")
        assert symbols_in_table(page) == ["MSFT"]

        page.screenshot(path=str(ARTIFACTS / "watchlist_detail.png"), full_page=True)
        page.get_by_role("link", name="Watchlists").last.click()
        expect(page.locator("table.watchlists")).to_contain_text("Tech leaders")
        page.screenshot(path=str(ARTIFACTS / "watchlist_list.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(ARTIFACTS / "watchlist_list_mobile.png"), full_page=True)
        page.get_by_role("link", name="Tech leaders").click()
        page.screenshot(path=str(ARTIFACTS / "watchlist_detail_mobile.png"), full_page=True)
