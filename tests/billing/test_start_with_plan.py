"""Pricing's "Start with <paid plan>": sign up, then on to Checkout for that plan (SPEC "Billing")."""

import re
import uuid
from collections.abc import Iterator

import pytest
from django.test import Client
from playwright.sync_api import expect

from accounts.models import User
from billing.models import Plan
from tenants.models import Organisation
from tests.billing.conftest import SECRET_KEY, WEBHOOK_SECRET, SessionAnswerer
from tests.conftest import PASSWORD, host_client
from tests.live import LiveServer, chromium_page, stream_environment, uvicorn_server
from tests.streaming import live_support
from tests.streaming.conftest import Committed
from tests.streaming.conftest import committed as committed_rows
from tests.tenants.test_signup import signup_data


@pytest.mark.django_db
def test_the_pricing_page_starts_paid_plans_with_their_checkout_step(public_client: Client) -> None:
    Plan.objects.filter(slug="pro").update(stripe_price_id="price_pro_start")
    page = public_client.get("/pricing/").content.decode()
    assert 'href="/signup/?next=/billing/start/pro/">Start with Pro' in page
    assert 'href="/signup/">Start with Free' in page
    assert 'href="/signup/">Start with Business' in page, "a plan not in Stripe yet starts free"


@pytest.mark.django_db
def test_sign_up_with_a_plan_hands_off_to_its_checkout_step(public_client: Client) -> None:
    response = public_client.post("/signup/?next=/billing/start/pro/", signup_data())
    assert response["Location"] == "/organisations/acme-labs/open/?next=%2Fbilling%2Fstart%2Fpro%2F"
    handoff = public_client.get(response["Location"])["Location"]
    assert re.fullmatch(r"http://acme-labs\.localhost/handoff/[^/]+/\?next=%2Fbilling%2Fstart%2Fpro%2F", handoff)

    tenant = host_client("acme-labs.localhost")
    assert tenant.get(handoff.removeprefix("http://acme-labs.localhost"))["Location"] == "/billing/start/pro/"
    start = tenant.get("/billing/start/pro/").content.decode()
    assert '<form method="post" action="/billing/checkout/pro/" data-submit-on-load>' in start


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "billing/"])
def test_the_hand_off_goes_nowhere_but_a_path_of_the_organisations_host(public_client: Client, target: str) -> None:
    response = public_client.post(f"/signup/?next={target}", signup_data())
    handoff = public_client.get(response["Location"])["Location"]
    assert "next=" not in handoff
    tenant = host_client("acme-labs.localhost")
    assert tenant.get(handoff.removeprefix("http://acme-labs.localhost"))["Location"] == "/"


db, committed = live_support.db, committed_rows


@pytest.fixture
def checkout_web(db: None, committed: Committed, stripe_sessions: SessionAnswerer) -> Iterator[LiveServer]:
    """A uvicorn process whose Stripe is the loopback answerer (Checkout pages included)."""
    stripe_env = {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                  "STRIPE_API_BASE": stripe_sessions.url}  # fmt: skip
    with uvicorn_server(**stream_environment(), **stripe_env) as server:
        yield server


@pytest.mark.live
@pytest.mark.browser
def test_start_with_a_paid_plan_signs_up_and_lands_on_stripe_checkout_in_chromium(
    committed: Committed, checkout_web: LiveServer, stripe_sessions: SessionAnswerer
) -> None:
    plan = committed.plan_sync(name="Desk", price_monthly=49, is_public=True, stripe_price_id="price_desk_browser")
    slug = f"desk{uuid.uuid4().hex[:8]}"
    email = f"founder@{slug}.example"
    try:
        with chromium_page() as page:
            page.goto(checkout_web.url("/pricing/"))
            page.locator(f'[data-plan="{plan.slug}"] a', has_text="Start with Desk").click()
            page.fill("#id_email", email)
            page.fill("#id_password1", PASSWORD)
            page.fill("#id_organisation_name", "Desk Co")
            page.fill("#id_subdomain", slug)
            page.get_by_role("button", name="Create organisation").click()
            expect(page.locator("h1")).to_have_text("Stripe Checkout (test)")
            assert page.url.startswith(f"{stripe_sessions.url}/pay/cs_test_")
            # Back on the organisation's host (uvicorn: the open-streams count reads Redis from a sync view).
            page.goto(checkout_web.url("/billing/", host=f"{slug}.localhost"))
            expect(page.locator("h1")).to_have_text("Billing of Desk Co")
            expect(page.locator('tr[data-usage="open-streams"] td.num').first).to_have_text("0")
        [session] = [form for path, form in stripe_sessions.requests if path == "/v1/checkout/sessions"]
        assert (session["client_reference_id"], session["line_items[0][price]"]) == (slug, "price_desk_browser")
        assert (
            session["success_url"] == f"http://{slug}.localhost:{checkout_web.port}/billing/success/?plan={plan.slug}"
        )
        assert Organisation.objects.get(slug=slug).stripe_customer_id.startswith("cus_test_")
    finally:
        for organisation in Organisation.objects.filter(slug=slug):
            organisation.delete()
        User.objects.filter(email=email).delete()
