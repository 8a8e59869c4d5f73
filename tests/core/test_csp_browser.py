"""The strict Content-Security-Policy in Debian's Chromium: every page works under it, nothing is blocked.

Real web and feed processes; the browser signs up, logs in, and uses the dashboard (quotes must still
stream over the websocket), watchlists (symbol search fetches), widgets (the live preview), the team
page (a confirmation dialog) and the settings page, while every console message and `securitypolicyviolation` event
is collected.
"""

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import ConsoleMessage, Dialog, Page, Response, expect

from accounts.models import User
from tenants.models import Membership, Organisation
from tests.conftest import PASSWORD
from tests.live import LiveServer, chromium_page
from tests.streaming import live_support
from tests.streaming.conftest import Committed, Tenant
from tests.streaming.conftest import committed as committed_rows

pytestmark = [pytest.mark.live, pytest.mark.browser]

# The live fixtures (pytest finds fixtures among a module's globals).
db, feed, web = live_support.db, live_support.feed, live_support.web
committed = committed_rows

PRICE_CHANGE_SECONDS = 5
# The page reports each violation on the console, where the listener below collects it. Injected
# through the DevTools protocol, this listener is not itself subject to the page's policy.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`securitypolicyviolation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


@dataclass
class PolicyWatch:
    """What the browser said about the policy while the test ran."""

    violations: list[str] = field(default_factory=list)
    documents: dict[str, str | None] = field(default_factory=dict)  # URL -> its Content-Security-Policy

    def console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "securitypolicyviolation" in message.text:
            self.violations.append(f"{message.type}: {message.text}")

    def response(self, response: Response) -> None:
        if response.request.resource_type == "document" and not 300 <= response.status < 400:
            self.documents[response.url] = response.headers.get("content-security-policy")


@contextmanager
def watched_page() -> Iterator[tuple[Page, PolicyWatch]]:
    watch = PolicyWatch()
    with chromium_page(permissions=["clipboard-read", "clipboard-write"]) as page:
        page.add_init_script(REPORT_VIOLATIONS)
        page.on("console", watch.console)
        page.on("response", watch.response)
        yield page, watch


def sign_up(page: Page, web: LiveServer, slug: str) -> None:
    page.goto(web.url("/"))
    page.get_by_role("link", name="Create your organisation").click()
    page.fill("#id_email", f"owner@{slug}.example")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_organisation_name", f"CSP {slug}")
    page.fill("#id_subdomain", slug)
    page.get_by_role("button", name="Create organisation").click()
    # Public host → hand-off on the organisation's host: a redirect after a form post, which
    # form-action governs too.
    page.wait_for_url(web.url("/", host=f"{slug}.localhost"))
    expect(page.locator("h1")).to_have_text(f"CSP {slug}")


def log_in(page: Page, web: LiveServer, tenant: Tenant) -> None:
    page.goto(web.url("/accounts/login/", host=tenant.host))
    page.fill("#id_login", tenant.owner.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text(tenant.organisation.name)


def use_watchlists(page: Page, web: LiveServer, tenant: Tenant) -> None:
    for name, symbols in (("Tech", "AAPL, MSFT, NVDA"), ("Other", "AMZN")):
        page.goto(web.url("/watchlists/", host=tenant.host))
        page.fill("#id_name", name)
        page.get_by_role("button", name="Create").click()
        page.fill("#id_symbols", symbols)
        page.get_by_role("button", name="Add", exact=True).click()
    # The symbol search suggests as one types: a script from a static file, fetching from this host.
    page.fill("#id_symbols", "GOOG")
    expect(page.get_by_role("option").first).to_be_visible()


def watch_quotes_stream(page: Page, web: LiveServer, tenant: Tenant) -> None:
    page.goto(web.url("/", host=tenant.host))
    page.select_option("#watchlist-picker", label="Tech (3)")  # submits itself (a static script)
    page.wait_for_url(re.compile(r"\?watchlist=\d+$"))
    expect(page.locator("#stream-badge")).to_have_text("Simulated · live")
    expect(page.locator("#quotes tbody tr")).to_have_count(3)
    for symbol in ("AAPL", "MSFT", "NVDA"):
        expect(page.locator(f'tr[data-symbol="{symbol}"] .price')).to_have_text(re.compile(r"\d"))
    first = {s: page.locator(f'tr[data-symbol="{s}"] .price').inner_text() for s in ("AAPL", "MSFT", "NVDA")}
    page.wait_for_function(
        """(first) => Object.entries(first).some(([symbol, price]) =>
            document.querySelector(`tr[data-symbol="${symbol}"] .price`).textContent !== price)""",
        arg=first,
        timeout=PRICE_CHANGE_SECONDS * 1000,
    )


def use_widgets(page: Page, web: LiveServer, tenant: Tenant) -> None:
    """Create a widget; its page's live preview (the embed script, in a Shadow DOM) streams under the policy."""
    page.goto(web.url("/widgets/", host=tenant.host))
    page.fill("#id_name", "Homepage")
    page.fill("#id_symbols", "AAPL, MSFT")
    page.fill("#id_allowed_origins", "https://www.example.com")
    page.get_by_role("button", name="Create widget").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Homepage")
    expect(page.locator("#snippet")).to_contain_text("data-tickerdeck-widget")
    expect(page.locator("[data-tickerdeck-widget] tbody td").first).to_have_text(re.compile(r"\d"))
    # A static script copies it (the context grants the clipboard, so the copy cannot fall back to
    # selecting the text), says so on the button, then puts the label back.
    copy = page.locator("button[data-copy=snippet]")
    expect(copy).to_have_text("Copy snippet")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == page.locator("#snippet").text_content()
    expect(copy).to_have_text("Copy snippet")


def dismiss_removing_a_member(page: Page, web: LiveServer, tenant: Tenant, member_email: str) -> str:
    """The team page asks before removing someone (a static script now); dismissing keeps them."""
    page.goto(web.url("/members/", host=tenant.host))
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name=f"Remove {member_email}").click()
    expect(page.get_by_role("button", name=f"Remove {member_email}")).to_be_visible()
    assert page.url == web.url("/members/", host=tenant.host)
    return dialogs[0]


def test_every_page_runs_under_the_strict_policy_without_a_violation(
    committed: Committed, feed: object, web: LiveServer
) -> None:
    tenant = committed.tenant_sync("pro")
    member_email = f"member-{uuid.uuid4().hex[:6]}@example.com"
    committed.member_sync(tenant, member_email)
    slug = f"csp-{uuid.uuid4().hex[:8]}"

    try:
        with watched_page() as (page, watch):
            sign_up(page, web, slug)
        with watched_page() as (page, tenant_watch):
            page.goto(web.url("/", host="nowhere.localhost"))  # the unknown-organisation page
            page.goto(web.url("/pricing/"))
            log_in(page, web, tenant)
            use_watchlists(page, web, tenant)
            watch_quotes_stream(page, web, tenant)
            use_widgets(page, web, tenant)
            dialog = dismiss_removing_a_member(page, web, tenant, member_email)
            page.goto(web.url("/settings/", host=tenant.host))
            expect(page.get_by_role("heading", level=1)).to_be_visible()
    finally:
        for organisation in Organisation.objects.filter(slug=slug):
            committed.users.extend(User.objects.filter(memberships__organisation=organisation))
            committed.organisations.append(organisation)

    violations = watch.violations + tenant_watch.violations
    documents = {**watch.documents, **tenant_watch.documents}
    assert violations == []
    unprotected = [url for url, policy in documents.items() if not policy or "default-src 'self'" not in policy]
    assert unprotected == []
    assert len(documents) >= 12  # landing, sign-up, dashboards, log-in, watchlists, team, settings, 404
    assert dialog == f"Remove {member_email} from {tenant.organisation.name}?"
    assert Membership.objects.filter(organisation=tenant.organisation, user__email=member_email).exists()
