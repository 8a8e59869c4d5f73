"""The embed script over time, in Chromium: token renewal, reconnects with backoff and jitter, stopping for good.

A web process on a fixed port plays the organisation's host and is killed and started again on that
port; tokens live 5 s here (renewed at 4 s), so renewals happen within a test. What the browser
does is counted in Python (token requests, websocket opens) and in the page, by an init script that
records close codes and the delays the script waits (Chromium runs init scripts outside the page's
Content-Security-Policy, as the violations listener of tests/core/test_csp_browser.py).
"""

import itertools
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Page, Request, Route, WebSocket, WebSocketRoute, expect

from accounts.models import User
from accounts.services import owner_get_or_create
from billing.models import Plan
from tenants.models import Organisation
from tenants.services.organisations import organisation_create
from tests.conftest import PASSWORD
from tests.live import (
    ROOT,
    FeedProcess,
    LiveServer,
    chromium_page,
    free_port,
    record_figure,
    server_environment,
    stream_environment,
    uvicorn_process,
)
from tests.watchlists.conftest import inside
from tests.widgets import test_browser
from tests.widgets.test_browser import WIDGET, Site, in_thread, price_cells, sees_live_quotes, serve
from widgets.models import Widget
from widgets.services import WidgetSpec, widget_create, widget_set_active
from widgets.snippets import embed_snippet

pytestmark = [pytest.mark.live, pytest.mark.browser, pytest.mark.django_db]

feed = test_browser.feed  # the feed process of the module (pytest finds fixtures among its globals)

TOKEN_SECONDS = 5
RENEWAL_MS = TOKEN_SECONDS * 800  # the script renews at 80 % of expires_in
RANDOM = 0.3  # Math.random() in the backoff tests: each retry waits 0.3 × min(30 s, 1 s × 2^attempt)
QUIET_SECONDS = RENEWAL_MS / 1000 + 2  # longer than a renewal period: a live script would have asked again
UNAVAILABLE = "Quotes unavailable"

# Records what the embed script does, from outside the page's policy. With a `random` argument,
# Math.random() returns it, so the backoff's delays can be compared with what the script must wait.
RECORDER = """
(random) => {
  const seen = (window.__tickerdeck = { closes: [], delays: [] });
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener("close", (event) => seen.closes.push(event.code));
    }
  };
  const nativeSetTimeout = window.setTimeout;
  window.setTimeout = function (callback, delay, ...rest) {
    seen.delays.push(delay);
    return nativeSetTimeout.call(window, callback, delay, ...rest);
  };
  if (random !== null) Math.random = () => random;
}
"""


class Web:
    """The organisation's web process on a fixed port, which a test may kill and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self._stack = ExitStack()
        self.server: LiveServer | None = None

    def start(self) -> None:
        env = stream_environment(WIDGET_TOKEN_SECONDS=str(TOKEN_SECONDS))
        self.server = self._stack.enter_context(uvicorn_process(env, port=self.port))

    def stop(self, signum: signal.Signals) -> None:
        """SIGKILL: connections drop (1006 in the browser); SIGTERM: closed with 1012 ("restarting")."""
        assert self.server is not None
        self.server.process.send_signal(signum)
        self.server.process.wait(timeout=30)
        self._stack.close()
        self.server = None

    def ensure_running(self) -> None:
        if self.server is None or self.server.process.poll() is not None:
            self._stack.close()
            self.start()


@dataclass
class World:
    web: Web
    organisation: Organisation
    widgets: dict[str, Widget]
    site: Site


@dataclass
class Traffic:
    """Token requests and websocket opens of one page, seen by Playwright, with when they happened."""

    started: float = field(default_factory=time.monotonic)
    tokens: list[float] = field(default_factory=list)
    sockets: list[float] = field(default_factory=list)

    def request(self, request: Request) -> None:
        if request.method == "POST" and "/token/" in request.url:
            self.tokens.append(time.monotonic() - self.started)

    def websocket(self, socket: WebSocket) -> None:
        if "/ws/stock-market/" in socket.url:
            self.sockets.append(time.monotonic() - self.started)

    def wait_for(self, page: Page, sockets: int = 0, tokens: int = 0, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while (len(self.sockets) < sockets or len(self.tokens) < tokens) and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert len(self.sockets) >= sockets, (self.sockets, self.tokens)
        assert len(self.tokens) >= tokens, (self.sockets, self.tokens)

    def counts(self) -> tuple[int, int]:
        return len(self.tokens), len(self.sockets)


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any, feed: FeedProcess) -> Iterator[World]:
    slug = f"wl-{uuid.uuid4().hex[:8]}"
    web = Web()
    site_port = free_port()
    site_origin = f"http://127.0.0.1:{site_port}"
    widget_origin = f"http://{slug}.localhost:{web.port}"
    with django_db_blocker.unblock():
        owner = owner_get_or_create(email=f"owner@{slug}.example", password=PASSWORD)
        plan = Plan.objects.get(slug="business")
        organisation = organisation_create(name="Lifecycle Co", slug=slug, owner=owner, plan=plan)
        with inside(organisation):
            widgets = {
                key: widget_create(
                    organisation=organisation,
                    spec=WidgetSpec(name=key.title(), symbols=("AAPL", "MSFT", "NVDA"), allowed_origins=(site_origin,)),
                )
                for key in ("renew", "restart", "revoke", "routed")
            }
        snippets = {
            key: embed_snippet(public_id=w.public_id, organisation_base_url=widget_origin) for key, w in widgets.items()
        }
        site = Site(site_port, widget_origin, snippets)
        site_server = serve(site)
        web.start()
        try:
            yield World(web, organisation, widgets, site)
        finally:
            web.ensure_running()  # nothing to do unless a test failed with it stopped
            web.stop(signal.SIGTERM)
            site_server.shutdown()
            organisation.delete()
            User.objects.filter(pk=owner.pk).delete()


@pytest.fixture(autouse=True)
def web_running(world: World) -> None:
    """The web process is up when a test starts (a failed test may have left it stopped)."""
    world.web.ensure_running()


def watched(page: Page, random: float | None = None, close_with: int | None = None) -> Traffic:
    """Count the page's traffic; with `close_with`, every websocket is answered by Playwright instead
    of the server, and closed at once with that code (the token requests still reach the server)."""
    traffic = Traffic()
    page.on("request", traffic.request)
    if close_with is None:
        page.on("websocket", traffic.websocket)
    else:

        def close(route: WebSocketRoute) -> None:
            traffic.sockets.append(time.monotonic() - traffic.started)
            route.close(code=close_with, reason="closed by the test")

        page.route_web_socket(re.compile(r"/ws/stock-market/"), close)
    page.add_init_script(f"({RECORDER})({'null' if random is None else random})")
    return traffic


def recorded(page: Page) -> dict[str, list[int]]:
    return dict(page.evaluate("window.__tickerdeck"))


def retry_delays(page: Page) -> list[float]:
    """The delays the script waited before trying again (every setTimeout but the token renewal's)."""
    return [delay for delay in recorded(page)["delays"] if delay != RENEWAL_MS]


def backoff(attempts: int) -> list[float]:
    return [RANDOM * min(30_000, 1000 * 2**attempt) for attempt in range(attempts)]


def stays_quiet(page: Page, traffic: Traffic) -> None:
    """No token request and no websocket for longer than a renewal period, and still unavailable."""
    before = traffic.counts()
    page.wait_for_timeout(QUIET_SECONDS * 1000)
    assert traffic.counts() == before
    expect(page.locator(f"{WIDGET} .msg")).to_have_text(UNAVAILABLE)
    expect(price_cells(page)).to_have_count(0)


def intervals(moments: list[float]) -> str:
    return ", ".join(f"{later - earlier:.2f}" for earlier, later in itertools.pairwise(moments))


# -- (a) renewal --------------------------------------------------------------------------------------
def test_the_token_is_renewed_before_it_expires_on_the_open_connection(world: World) -> None:
    with chromium_page() as page:
        traffic = watched(page)
        page.goto(world.site.url("/renew.html"))
        sees_live_quotes(page)
        # The first token and three renewals (4 s apart): longer than two token lifetimes.
        traffic.wait_for(page, tokens=4, seconds=4 * TOKEN_SECONDS)
        assert len(traffic.sockets) == 1  # renewed beside the open connection, which stays
        assert recorded(page)["closes"] == []
        sees_live_quotes(page)
    record_figure(
        "widget token renewal",
        f"token lifetime {TOKEN_SECONDS} s, requests at {', '.join(f'{t:.2f}' for t in traffic.tokens)} s "
        f"(apart: {intervals(traffic.tokens)} s)",
    )


# -- (b) reconnects ----------------------------------------------------------------------------------
def test_a_dropped_connection_and_a_restart_reconnect_with_backoff_and_jitter(world: World) -> None:
    """SIGKILL (the connection drops: 1006), then SIGTERM (1012, "restarting"): the widget comes back
    each time, waiting RANDOM × a doubling cap between tries, from 1 s again after each reconnect.
    The server stays away longer than a token lives, so the reconnect needs a token it renewed itself."""
    with chromium_page() as page:
        traffic = watched(page, random=RANDOM)
        page.goto(world.site.url("/restart.html"))
        sees_live_quotes(page)
        for signum, code in ((signal.SIGKILL, 1006), (signal.SIGTERM, 1012)):
            retried_before = len(retry_delays(page))
            closes_before = len(recorded(page)["closes"])
            sockets_before = len(traffic.sockets)
            dropped = time.monotonic() - traffic.started
            world.web.stop(signum)
            page.wait_for_timeout((TOKEN_SECONDS + 1) * 1000)  # down longer than a token lives
            world.web.start()
            sees_live_quotes(page)
            closes = recorded(page)["closes"]
            assert closes[closes_before] == code, closes
            assert 4401 not in closes  # never reconnected with an expired token
            delays = retry_delays(page)[retried_before:]
            assert len(delays) >= 2, delays  # tried again while it was away
            assert delays == backoff(len(delays))  # the cap doubles; the wait is the random share of it
            attempts, back = len(traffic.sockets) - sockets_before, traffic.sockets[-1] - dropped
            record_figure(
                "widget reconnect",
                f"close {code}: {attempts} websocket attempts, the last at +{back:.2f} s "
                f"after the stop (server down {TOKEN_SECONDS + 1} s + its start); waits {delays} ms",
            )


# -- (c) terminal closes -------------------------------------------------------------------------------
def test_a_revoked_widget_stops_for_good(world: World, django_db_blocker: Any) -> None:
    with chromium_page() as page:
        traffic = watched(page)
        page.goto(world.site.url("/revoke.html"))
        sees_live_quotes(page)
        in_thread(lambda: set_active(world, "revoke", active=False), django_db_blocker)
        expect(page.locator(f"{WIDGET} .msg")).to_have_text(UNAVAILABLE)
        assert recorded(page)["closes"] == [4403]
        stays_quiet(page, traffic)
        assert traffic.counts() == (1, 1)


TERMINAL_CODES = (4400, 4402, 4403, 4404, 4429)


def test_a_terminal_close_code_is_not_retried(world: World) -> None:
    """One page per code, side by side in one browser, so that they wait out the quiet period together."""
    with chromium_page() as first:
        pages = [first, *(first.context.browser.new_page() for _ in TERMINAL_CODES[1:])]  # type: ignore[union-attr]
        traffics = [watched(page, close_with=code) for page, code in zip(pages, TERMINAL_CODES, strict=True)]
        for page in pages:
            page.set_default_timeout(20_000)
            page.goto(world.site.url("/routed.html"))
        for page in pages:
            expect(page.locator(f"{WIDGET} .msg")).to_have_text(UNAVAILABLE)
        before = [traffic.counts() for traffic in traffics]
        first.wait_for_timeout(QUIET_SECONDS * 1000)
        for page, traffic, code, counted in zip(pages, traffics, TERMINAL_CODES, before, strict=True):
            assert traffic.counts() == counted == (1, 1), code
            expect(page.locator(f"{WIDGET} .msg")).to_have_text(UNAVAILABLE)
            expect(price_cells(page)).to_have_count(0)
            assert recorded(page)["closes"] == [code]


@pytest.mark.parametrize("code", [1011, 1012, 4401, 4408])
def test_other_close_codes_are_retried(world: World, code: int) -> None:
    """Server trouble, a restart, a refused token (fetched again first) or a slow reader: tried again."""
    with chromium_page() as page:
        traffic = watched(page, close_with=code)
        page.goto(world.site.url("/routed.html"))
        traffic.wait_for(page, sockets=3)
        tokens, sockets = traffic.counts()
        assert tokens >= (sockets if code == 4401 else 1)
        assert recorded(page)["closes"][:3] == [code] * 3
        expect(page.locator(f"{WIDGET} .msg")).to_have_text("Loading quotes…")  # not given up


def test_a_refusal_while_a_retry_waits_cancels_the_retry(world: World) -> None:
    """Websockets are closed with 1011 (tried again after 0.99 × 1, 2, 4 s); the renewal at 4 s is
    refused with a 403 the script can read (as the organisation's own preview page can), while a retry
    waits: it stops there, and the waiting retry opens no websocket."""
    renewals: list[str] = []

    def refuse_renewals(route: Route) -> None:
        if not renewals:
            renewals.append("first")
            route.continue_()
            return
        renewals.append("refused")
        route.fulfill(
            status=403,
            headers={"Access-Control-Allow-Origin": world.site.origin, "Content-Type": "application/json"},
            body='{"error": "forbidden", "message": "This widget has been turned off by its organisation."}',
        )

    with chromium_page() as page:
        traffic = watched(page, random=0.99, close_with=1011)
        page.route(re.compile(r"/token/$"), refuse_renewals)
        page.goto(world.site.url("/routed.html"))
        traffic.wait_for(page, tokens=2, seconds=RENEWAL_MS / 1000 + 5)
        expect(page.locator(f"{WIDGET} .msg")).to_have_text(UNAVAILABLE)
        sockets = len(traffic.sockets)
        assert sockets >= 2  # the first, and retries; one was waiting when the renewal was refused
        stays_quiet(page, traffic)
        assert len(traffic.sockets) == sockets
        assert renewals == ["first", "refused"]


def set_active(world: World, key: str, *, active: bool) -> None:
    with inside(world.organisation):
        widget_set_active(organisation=world.organisation, widget_id=world.widgets[key].pk, active=active)


# -- create_widget -------------------------------------------------------------------------------------
def test_the_snippet_printed_by_create_widget_shows_live_quotes_on_another_site(world: World) -> None:
    printed = subprocess.run(
        [
            sys.executable, "manage.py", "create_widget", "--org", world.organisation.slug, "--name", "From the CLI",
            "--symbols", "AAPL,msft", "--origin", world.site.origin, "--base-url", world.site.widget_origin,
        ],
        cwd=ROOT, env=server_environment(), capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    snippet = printed.split("Snippet:\n", 1)[1].strip()
    assert re.fullmatch(
        r'<div data-tickerdeck-widget="w_[\w-]{16}"></div>\n<script src="[^"]+" async></script>', snippet
    )
    world.site.snippets["cli"] = snippet
    with chromium_page() as page:
        page.goto(world.site.url("/cli.html"))
        expect(page.locator(f"{WIDGET} caption")).to_have_text("From the CLI")
        expect(page.locator(f"{WIDGET} tbody th")).to_have_text(["AAPL", "MSFT"])
        sees_live_quotes(page)
