"""Accessibility tests' world: one organisation, web and feed processes, a customer's site, one Chromium.

Everything here is set up once for the package (a feed, a uvicorn process, a Chromium) and each test
opens a fresh browser context in it, so the accessibility checks of eight pages cost seconds, not a
server start each.
"""

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from accounts.models import User
from accounts.services import owner_get_or_create
from accounts.sessions import session_create
from billing.models import BillingHistory, BillingHistoryKind, Plan
from tenants.db import activate_public_schema
from tenants.models import Organisation
from tenants.services.organisations import organisation_create
from tests.conftest import PASSWORD
from tests.live import (
    CHROMIUM,
    CHROMIUM_ARGS,
    FeedProcess,
    LiveServer,
    feed_process,
    free_port,
    stream_environment,
    uvicorn_server,
)
from tests.watchlists.conftest import inside
from watchlists.services import watchlist_create
from widgets.models import WidgetKind, WidgetTheme
from widgets.services import WidgetSpec, widget_create
from widgets.snippets import embed_snippet

AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
SYMBOLS = ("AAPL", "MSFT", "NVDA")


@dataclass
class Customer:
    """A customer's web site showing the organisation's widgets, under a strict Content-Security-Policy."""

    port: int
    widget_origin: str
    snippets: str

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def html(self) -> str:
        # A well-formed page of its own (language, title, landmarks, a heading), so that what axe
        # finds on it is the widgets'.
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Customer news</title></head>'
            "<body><main><h1>Markets today</h1><p>Our favourite stocks, live.</p>"
            f"{self.snippets}</main></body></html>"
        )

    def csp(self) -> str:
        return (
            f"default-src 'none'; script-src {self.widget_origin}; "
            f"connect-src {self.widget_origin} {self.widget_origin.replace('http', 'ws', 1)}; "
            "base-uri 'none'; require-trusted-types-for 'script'"
        )


def serve(site: Customer) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Security-Policy", site.csp())
            self.end_headers()
            self.wfile.write(site.html().encode())

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", site.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class World:
    web: LiveServer
    organisation: Organisation
    session: str  # the owner's sessionid on the organisation's host
    watchlist_id: int
    widget_id: int
    customer: Customer

    @property
    def host(self) -> str:
        return f"{self.organisation.slug}.localhost"

    def url(self, path: str) -> str:
        """A page of the organisation's host."""
        return self.web.url(path, host=self.host)


@pytest.fixture(scope="package")
def feed(django_db_setup: None) -> Iterator[FeedProcess]:
    with feed_process(**stream_environment()) as running:
        running.wait_leading()
        yield running


@pytest.fixture(scope="package")
def world(django_db_setup: None, django_db_blocker: Any, feed: FeedProcess) -> Iterator[World]:
    """An organisation on Pro with a watchlist, billing history and two widgets, served by uvicorn."""
    slug = f"a11y-{uuid.uuid4().hex[:8]}"
    customer_port = free_port()
    # A Stripe key (never used: no page here calls Stripe) so that the billing page offers its plans.
    with uvicorn_server(**stream_environment(STRIPE_SECRET_KEY="sk_test_a11y")) as web, django_db_blocker.unblock():
        owner = owner_get_or_create(email=f"owner@{slug}.example", password=PASSWORD)
        organisation = organisation_create(
            name="Acme Research", slug=slug, owner=owner, plan=Plan.objects.get(slug="pro")
        )
        # A paid plan on sale (with a Stripe price), so that the billing page offers an upgrade.
        team = Plan.objects.create(
            name="Team", slug=slug, price_monthly=99, stripe_price_id=f"price_{slug}", is_public=True, realtime=True,
            max_symbols_per_stream=100, max_streams=20, max_watchlists=20, max_widgets=5, max_widget_viewers=500,
        )  # fmt: skip
        BillingHistory.objects.create(
            organisation=organisation, kind=BillingHistoryKind.PLAN, description="Plan changed to Pro"
        )
        widget_origin = f"http://{slug}.localhost:{web.port}"
        with inside(organisation):
            watchlist = watchlist_create(organisation=organisation, name="Tech", symbols=SYMBOLS)
            widgets = [
                widget_create(
                    organisation=organisation,
                    spec=WidgetSpec(
                        name=name,
                        kind=kind,
                        theme=theme,
                        symbols=SYMBOLS,
                        allowed_origins=(f"http://127.0.0.1:{customer_port}",),
                    ),
                )
                for name, kind, theme in (
                    ("Quotes", WidgetKind.QUOTE_TABLE, WidgetTheme.LIGHT),
                    ("Tape", WidgetKind.TICKER_TAPE, WidgetTheme.DARK),
                )
            ]
        activate_public_schema()
        snippets = "\n".join(
            embed_snippet(public_id=widget.public_id, organisation_base_url=widget_origin) for widget in widgets
        )
        customer = Customer(customer_port, widget_origin, snippets)
        site = serve(customer)
        try:
            yield World(web, organisation, session_create(owner), watchlist.pk, widgets[0].pk, customer)
        finally:
            site.shutdown()
            organisation.delete()
            User.objects.filter(pk=owner.pk).delete()
            team.delete()


@pytest.fixture(scope="package")
def browser(world: World) -> Iterator[Browser]:
    """One headless Chromium for the package (set up after the world's rows, closed before they go).

    Playwright's sync API runs an event loop in this thread while it is open, and Django refuses
    queries next to one: the world's database work happens before it opens and after it closes.
    """
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def signed_in_context(browser: Browser, world: World, **options: Any) -> BrowserContext:
    """A fresh context (own cookie jar and storage) holding the owner's session on the organisation's host."""
    context = browser.new_context(**options)
    context.set_default_timeout(20_000)
    context.add_cookies([{"name": "sessionid", "value": world.session, "url": world.url("/")}])
    return context


@pytest.fixture
def page(browser: Browser, world: World) -> Iterator[Page]:
    """A page of a fresh context where the organisation's owner is signed in."""
    context = signed_in_context(browser, world)
    try:
        yield context.new_page()
    finally:
        context.close()
