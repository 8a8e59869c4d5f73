"""The embed snippet on third-party pages in Chromium: other origins, a strict CSP, hostile CSS, no DOM.

A plain HTTP server on another loopback port plays the customer's web site; the widget's script,
token and websocket come from a real uvicorn process, with a real feed process publishing quotes.
"""

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from accounts.services import owner_get_or_create
from billing.models import Plan
from tenants.models import Organisation
from tenants.services.organisations import organisation_create
from tests.conftest import PASSWORD
from tests.live import (
    ARTIFACTS,
    FeedProcess,
    LiveServer,
    chromium_page,
    feed_process,
    free_port,
    stream_environment,
    uvicorn_server,
)
from tests.watchlists.conftest import inside
from widgets.models import Widget
from widgets.services import WidgetSpec, widget_create, widget_set_active
from widgets.snippets import embed_snippet

pytestmark = [pytest.mark.live, pytest.mark.browser, pytest.mark.django_db]

HOSTILE_CSS = "body * { display: none !important; } * { font-size: 1px !important; color: red !important; }"
WIDGET = "[data-tickerdeck-widget]"


@dataclass
class Site:
    """A customer's web site: pages with the snippet, served with a strict Content-Security-Policy."""

    port: int
    widget_origin: str  # scheme://host:port of the organisation's host
    snippets: dict[str, str]

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.origin}{path}"

    def csp(self, path: str) -> str:
        # No 'unsafe-inline', no 'unsafe-eval', no blob: workers, Trusted Types required: the widget
        # needs only its organisation's origin in script-src and connect-src (with its ws: form, which
        # Chromium does not derive from the http: one).
        return (
            f"default-src 'none'; script-src 'self' {self.widget_origin}; "
            f"connect-src {self.widget_origin} {self.widget_origin.replace('http', 'ws', 1)}; "
            "style-src 'self'; worker-src 'self'; base-uri 'none'"
            # Trusted Types would refuse the SSR harness's own `new Worker(url)`; the widget's pages get it.
            + ("" if path.startswith("/ssr") else "; require-trusted-types-for 'script'")
        )

    def page(self, path: str) -> tuple[str, str] | None:
        """(content type, body) of a path of this site."""
        name, _, _ = path.lstrip("/").partition("?")
        if name == "ssr.html":
            return "text/html", '<!doctype html><title>pending</title><script src="/ssr-page.js"></script>'
        if name.endswith(".html") and name.removesuffix(".html").split("-")[0] in self.snippets:
            key, _, variant = name.removesuffix(".html").partition("-")
            head = f'<link rel="stylesheet" href="/{variant}.css">' if variant else ""
            filler = '<div class="filler">Long article</div>' if variant == "long" else ""
            body = f"<h1>A customer's page</h1>{filler}\n{self.snippets[key]}\n{filler}"
            return (
                "text/html",
                f"<!doctype html><html><head><title>Customer</title>{head}</head><body>{body}</body></html>",
            )
        if name == "hostile.css":
            return "text/css", HOSTILE_CSS
        if name == "themed.css":
            return "text/css", "[data-tickerdeck-widget] { --tickerdeck-bg: rgb(1, 2, 3); --tickerdeck-radius: 0px; }"
        if name == "long.css":
            return "text/css", ".filler { height: 3000px; }"
        if name == "ssr-page.js":
            return "text/javascript", (
                'const worker = new Worker("/ssr-worker.js");'
                "worker.onmessage = (event) => { document.title = event.data; };"
            )
        if name == "ssr-worker.js":
            script = self.snippets["ssr"]
            return "text/javascript", (
                f'try {{ importScripts("{script}"); postMessage("loaded without a DOM"); }}'
                ' catch (error) { postMessage("threw: " + error); }'
            )
        return None


def serve(site: Site) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = site.page(self.path)
            if found is None:
                self.send_error(404)
                return
            content_type, body = found
            self.send_response(200)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Security-Policy", site.csp(self.path))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", site.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class World:
    server: LiveServer
    organisation: Organisation
    widgets: dict[str, Widget]
    allowed: Site
    other: Site

    def token_status(self, origin: str) -> int:
        import urllib.error
        import urllib.request

        public_id = self.widgets["table"].public_id
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.server.port}/widgets/{public_id}/token/",
            method="POST",
            headers={"Host": f"{self.organisation.slug}.localhost:{self.server.port}", "Origin": origin},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback only)
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)


@pytest.fixture(scope="module")
def feed(django_db_setup: None) -> Iterator[FeedProcess]:
    with feed_process(**stream_environment()) as running:
        running.wait_leading()
        yield running


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any, feed: FeedProcess) -> Iterator[World]:
    slug = f"wg-{uuid.uuid4().hex[:8]}"
    allowed_port, other_port = free_port(), free_port()
    allowed_origin = f"http://127.0.0.1:{allowed_port}"
    with uvicorn_server(**stream_environment()) as server, django_db_blocker.unblock():
        owner = owner_get_or_create(email=f"owner@{slug}.example", password=PASSWORD)
        organisation = organisation_create(name="Widget Co", slug=slug, owner=owner, plan=Plan.objects.get(slug="pro"))
        widget_origin = f"http://{slug}.localhost:{server.port}"
        with inside(organisation):
            widgets = {
                key: widget_create(
                    organisation=organisation,
                    spec=WidgetSpec(
                        name=name, kind=kind, symbols=("AAPL", "MSFT", "NVDA"), allowed_origins=(allowed_origin,)
                    ),
                )
                for key, name, kind in [
                    ("table", "Quotes", "quote_table"),
                    ("tape", "Tape", "ticker_tape"),
                    ("revoke", "Revocable", "quote_table"),
                ]
            }
        snippets = {
            key: embed_snippet(public_id=w.public_id, organisation_base_url=widget_origin) for key, w in widgets.items()
        }
        snippets["ssr"] = f"{widget_origin}/widgets/{widgets['table'].public_id}/embed.js"
        allowed = Site(allowed_port, widget_origin, snippets)
        other = Site(other_port, widget_origin, snippets)
        servers = [serve(allowed), serve(other)]
        try:
            yield World(server, organisation, widgets, allowed, other)
        finally:
            for site_server in servers:
                site_server.shutdown()
            organisation.delete()
            User.objects.filter(pk=owner.pk).delete()


def price_cells(page: Page) -> Any:
    return page.locator(f"{WIDGET} tbody td:nth-child(2)")


def sees_live_quotes(page: Page) -> None:
    """Prices appear, and one of them changes."""
    first = price_cells(page).first
    expect(first).to_have_text(re.compile(r"\d"), timeout=15_000)
    before = first.inner_text()
    expect(first).not_to_have_text(before, timeout=15_000)


def test_a_third_party_page_with_a_strict_csp_shows_live_quotes(world: World) -> None:
    errors: list[str] = []
    with chromium_page() as page:
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(world.allowed.url("/table.html"))
        expect(page.locator(f"{WIDGET} caption")).to_have_text("Quotes")
        sees_live_quotes(page)
        expect(page.locator(f"{WIDGET} .foot")).to_contain_text("Simulated data")
        live_region = page.locator(f"{WIDGET} [role=status]")
        expect(live_region).to_have_attribute("aria-live", "polite")
        expect(live_region).to_contain_text(re.compile(r"(AAPL|MSFT|NVDA) \d"))
        page.screenshot(path=str(ARTIFACTS / "widget_third_party.png"))
    assert errors == [], errors  # no CSP violation, no exception


def test_the_ticker_tape_scrolls_quotes(world: World) -> None:
    with chromium_page() as page:
        page.goto(world.allowed.url("/tape.html"))
        items = page.locator(f"{WIDGET} .item")
        expect(items).to_have_count(3, timeout=15_000)
        expect(items.first).to_contain_text(re.compile(r"[A-Z]+\s*\d"), timeout=15_000)


def test_a_hostile_stylesheet_does_not_hide_or_shrink_the_widget(world: World) -> None:
    with chromium_page() as page:
        page.goto(world.allowed.url("/table-hostile.html"))
        expect(page.locator("h1")).to_be_hidden()  # the page's own stylesheet did apply
        expect(page.locator(f"{WIDGET} table")).to_be_visible()
        sees_live_quotes(page)
        size = page.locator(f"{WIDGET} caption").evaluate("node => parseFloat(getComputedStyle(node).fontSize)")
        assert size >= 12
        page.screenshot(path=str(ARTIFACTS / "widget_hostile_css.png"))


def test_the_host_page_themes_it_with_css_custom_properties(world: World) -> None:
    with chromium_page() as page:
        page.goto(world.allowed.url("/table-themed.html"))
        box = page.locator(f"{WIDGET} .w")
        expect(box).to_have_css("background-color", "rgb(1, 2, 3)", timeout=15_000)
        expect(box).to_have_css("border-radius", "0px")


def test_numbers_follow_the_viewer_locale(world: World) -> None:
    with chromium_page(locale="de-DE") as page:
        page.goto(world.allowed.url("/table.html"))
        expect(price_cells(page).first).to_have_text(re.compile(r"^\d{1,3}(\.\d{3})*,\d{2}$"), timeout=15_000)


def test_the_widget_never_captures_page_scrolling(world: World) -> None:
    with chromium_page(viewport={"width": 390, "height": 700}, has_touch=True, is_mobile=True) as page:
        page.goto(world.allowed.url("/table-long.html"))
        widget = page.locator(f"{WIDGET} table")
        widget.scroll_into_view_if_needed()
        expect(widget).to_be_visible(timeout=15_000)
        box = widget.bounding_box()
        assert box is not None
        before = page.evaluate("window.scrollY")
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, 400)
        deadline = time.monotonic() + 5
        while page.evaluate("window.scrollY") <= before and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert page.evaluate("window.scrollY") > before  # the page scrolled: the widget let the wheel through


def test_an_origin_not_in_the_list_shows_the_neutral_state_and_is_refused(world: World) -> None:
    with chromium_page() as page:
        page.goto(world.other.url("/table.html"))
        expect(page.locator(f"{WIDGET} .msg")).to_have_text("Quotes unavailable", timeout=15_000)
        expect(price_cells(page)).to_have_count(0)
    assert world.token_status(world.other.origin) == 403
    assert world.token_status(world.allowed.origin) == 200


def test_the_script_does_nothing_and_throws_nothing_without_a_dom(world: World) -> None:
    with chromium_page() as page:
        page.goto(world.allowed.url("/ssr.html"))
        expect(page).to_have_title("loaded without a DOM")


def test_revoking_closes_open_viewers_within_two_seconds(world: World, django_db_blocker: Any) -> None:
    with chromium_page() as page:
        page.goto(world.allowed.url("/revoke.html"))
        sees_live_quotes(page)
        in_thread(lambda: revoke(world), django_db_blocker)
        expect(page.locator(f"{WIDGET} .msg")).to_have_text("Quotes unavailable", timeout=2_000)


def revoke(world: World) -> None:
    with inside(world.organisation):
        widget_set_active(organisation=world.organisation, widget_id=world.widgets["revoke"].pk, active=False)


def in_thread(work: Callable[[], None], django_db_blocker: Any) -> None:
    """Database work while Playwright's loop runs in this thread (Django refuses queries next to a loop)."""
    from django.db import connection

    failures: list[BaseException] = []

    def run() -> None:
        try:
            with django_db_blocker.unblock():
                work()
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if failures:
        raise failures[0]
