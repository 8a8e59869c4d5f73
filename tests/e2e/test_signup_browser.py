"""Sign-up in a real browser against a real server: landing → form → the new organisation's dashboard."""

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from tenants.models import Organisation, Role
from tests.conftest import PASSWORD
from tests.live import ARTIFACTS, LiveServer, chromium_page, uvicorn_server

# django_db: the live server needs the test database, which pytest-django creates only for such tests.
pytestmark = [pytest.mark.live, pytest.mark.browser, pytest.mark.django_db]


@dataclass(frozen=True)
class SignUp:
    slug: str
    name: str
    dashboard_url: str
    landed_url: str
    heading: str
    plan: str
    signed_in_as: str
    seconds: float


@pytest.fixture(scope="module")
def server(django_db_setup: None) -> Iterator[LiveServer]:
    with uvicorn_server() as live:
        yield live


@pytest.fixture(scope="module")
def created_slugs(django_db_setup: None, django_db_blocker: Any) -> Iterator[list[str]]:
    """Slugs of organisations the live server committed; they and their owners are deleted at the end."""
    slugs: list[str] = []
    yield slugs
    with django_db_blocker.unblock():
        for organisation in Organisation.objects.filter(slug__in=slugs):
            owners = list(User.objects.filter(memberships__organisation=organisation))
            organisation.delete()  # auto_drop_schema: drops its schema too
            User.objects.filter(pk__in=[user.pk for user in owners], memberships__isnull=True).delete()


def fill_signup(page: Page, *, email: str, name: str, subdomain: str) -> None:
    page.fill("#id_email", email)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_organisation_name", name)
    page.fill("#id_subdomain", subdomain)


@pytest.fixture(scope="module")
def signed_up(server: LiveServer, created_slugs: list[str]) -> SignUp:
    """Sign up once through the browser, from the landing page; the tests below look at the result."""
    slug = f"e2e-{uuid.uuid4().hex[:8]}"
    name = f"E2E Trading {slug[4:]}"
    dashboard_url = server.url("/", host=f"{slug}.localhost")
    created_slugs.append(slug)
    with chromium_page() as page:
        page.goto(server.url("/"))
        page.get_by_role("link", name="Create your organisation").click()
        page.wait_for_url(server.url("/signup/"))
        fill_signup(page, email=f"owner@{slug}.example", name=name, subdomain=slug)
        started = time.perf_counter()
        page.get_by_role("button", name="Create organisation").click()
        page.wait_for_url(dashboard_url, wait_until="load")
        seconds = time.perf_counter() - started
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "signup_dashboard.png"), full_page=True)
        result = SignUp(
            slug=slug,
            name=name,
            dashboard_url=dashboard_url,
            landed_url=page.url,
            heading=page.get_by_role("heading", level=1).inner_text(),
            plan=page.get_by_role("heading", name="Plan:").inner_text(),
            signed_in_as=page.locator(".nav__user").inner_text(),
            seconds=seconds,
        )
    (ARTIFACTS / "signup_timing.txt").write_text(f"sign-up submit to dashboard loaded: {seconds * 1000:.0f} ms\n")
    print(f"\nsign-up submit → dashboard loaded: {seconds * 1000:.0f} ms")  # noqa: T201
    return result


def test_signup_lands_signed_in_on_the_new_organisation_dashboard(signed_up: SignUp) -> None:
    assert signed_up.landed_url == signed_up.dashboard_url
    assert signed_up.heading == signed_up.name
    assert signed_up.plan == "Plan: Free"
    assert signed_up.signed_in_as == f"owner@{signed_up.slug}.example"


def test_signup_created_the_organisation_with_its_domain_and_owner(signed_up: SignUp) -> None:
    organisation = Organisation.objects.select_related("plan").get(slug=signed_up.slug)
    owners = organisation.memberships.filter(role=Role.OWNER).values_list("user__email", flat=True)
    assert organisation.plan.slug == "free"
    assert organisation.get_primary_domain().domain == f"{signed_up.slug}.localhost"
    assert list(owners) == [f"owner@{signed_up.slug}.example"]


def test_signup_timing_and_screenshot_are_saved(signed_up: SignUp) -> None:
    assert f"{signed_up.seconds * 1000:.0f} ms" in (ARTIFACTS / "signup_timing.txt").read_text()
    assert (ARTIFACTS / "signup_dashboard.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("subdomain", "message"),
    [(None, "is already taken; please choose another subdomain."),
     ("www", "“www” is reserved; please choose another subdomain.")],
    ids=["taken", "reserved"],
)  # fmt: skip
def test_signup_shows_a_refused_subdomain_next_to_its_field(
    server: LiveServer, signed_up: SignUp, subdomain: str | None, message: str
) -> None:
    screenshot = ARTIFACTS / f"signup_error_{subdomain or 'taken'}.png"
    subdomain = subdomain or signed_up.slug  # None: the one just signed up, now taken
    email = f"second-{uuid.uuid4().hex[:8]}@e2e.example"
    with chromium_page() as page:
        page.goto(server.url("/signup/"))
        fill_signup(page, email=email, name="Second Try", subdomain=subdomain)
        page.get_by_role("button", name="Create organisation").click()
        field = page.locator(".field--error", has=page.locator("#id_subdomain"))
        expect(field.locator("#id_subdomain-errors")).to_contain_text(message)
        expect(page.locator(".field--error")).to_have_count(1)  # only the subdomain is in error
        expect(page.locator("#id_subdomain")).to_have_value(subdomain)
        expect(page.locator("#id_organisation_name")).to_have_value("Second Try")
        assert page.url == server.url("/signup/")
        page.screenshot(path=str(screenshot))
    assert not User.objects.filter(email=email).exists()  # a refused sign-up saves nothing
