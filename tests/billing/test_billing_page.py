"""The organisation's /billing/ page, Checkout and the Customer Portal (SPEC "Billing")."""

from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from billing.models import BillingHistory, Plan
from billing.services import organisation_billing_save
from tenants.models import Organisation
from tests.billing.conftest import SessionAnswerer
from tests.billing.stripe_events import deliver, subscription_event
from tests.conftest import host_client
from tests.tenants.conftest import Team, member_client, team

pytestmark = pytest.mark.django_db

__all__ = ["team"]  # fixture from tests/tenants/conftest.py


@pytest.fixture
def pro_on_sale(db: None) -> Plan:
    Plan.objects.filter(slug="pro").update(stripe_price_id="price_pro_page")
    Plan.objects.filter(slug="business").update(stripe_price_id="price_business_page")
    return Plan.objects.get(slug="pro")


def posts_to(answerer: SessionAnswerer, path: str) -> list[dict[str, str]]:
    return [form for sent, form in answerer.requests if sent == path]


def test_checkout_creates_the_customer_once_and_answers_303_to_stripe(
    team: Team, pro_on_sale: Plan, stripe_sessions: SessionAnswerer
) -> None:
    client = member_client(team.admin)
    response = client.post("/billing/checkout/pro/")

    assert response.status_code == 303
    assert response["Location"] == f"{stripe_sessions.url}/pay/cs_test_2"
    [customer] = posts_to(stripe_sessions, "/v1/customers")
    assert customer == {"name": "Acme Fund", "email": "admin@acme.example", "metadata[organisation]": "acme"}
    [session] = posts_to(stripe_sessions, "/v1/checkout/sessions")
    assert session == {
        "mode": "subscription",
        "customer": "cus_test_1",
        "client_reference_id": "acme",
        "line_items[0][price]": "price_pro_page",
        "line_items[0][quantity]": "1",
        "metadata[organisation]": "acme",
        "metadata[plan]": "pro",
        "subscription_data[metadata][organisation]": "acme",
        "subscription_data[metadata][plan]": "pro",
        "success_url": "http://acme.localhost/billing/success/?plan=pro",
        "cancel_url": "http://acme.localhost/billing/cancel/",
    }
    assert Organisation.objects.get(pk=team.organisation.pk).stripe_customer_id == "cus_test_1"

    assert client.post("/billing/checkout/business/").status_code == 303
    assert len(posts_to(stripe_sessions, "/v1/customers")) == 1, "the customer is reused"
    assert posts_to(stripe_sessions, "/v1/checkout/sessions")[1]["customer"] == "cus_test_1"


def test_the_portal_answers_303_to_stripe_for_a_paying_organisation(
    team: Team, stripe_sessions: SessionAnswerer
) -> None:
    Organisation.objects.filter(pk=team.organisation.pk).update(stripe_customer_id="cus_paying")
    response = member_client(team.owner).post("/billing/portal/")

    assert response.status_code == 303
    assert response["Location"] == f"{stripe_sessions.url}/portal"
    assert posts_to(stripe_sessions, "/v1/billing_portal/sessions") == [
        {"customer": "cus_paying", "return_url": "http://acme.localhost/billing/"}
    ]


def test_an_organisation_with_a_subscription_changes_plan_in_the_portal_not_a_second_checkout(
    team: Team, pro_on_sale: Plan, stripe_sessions: SessionAnswerer
) -> None:
    Organisation.objects.filter(pk=team.organisation.pk).update(
        stripe_customer_id="cus_x", stripe_subscription_id="sub_x"
    )
    client = member_client(team.owner)
    page = client.get("/billing/").content.decode()
    assert "Manage plan and payment" in page
    assert "Upgrade to" not in page

    response = client.post("/billing/checkout/business/", follow=True)
    assert "change its plan in the Customer Portal" in response.content.decode()
    assert posts_to(stripe_sessions, "/v1/checkout/sessions") == []


def test_members_see_the_plan_and_usage_but_no_buttons_and_cannot_post(
    team: Team, pro_on_sale: Plan, stripe_sessions: SessionAnswerer
) -> None:
    client = member_client(team.member)
    page = client.get("/billing/").content.decode()

    assert "Free plan" in page
    assert 'data-usage="open-streams"' in page
    assert "Only owners and admins can change the plan" in page
    assert "<button" not in page.split('id="change"')[1].split("</section>")[0]
    assert client.post("/billing/checkout/pro/").status_code == 403
    assert client.post("/billing/portal/").status_code == 403
    assert stripe_sessions.requests == []


def test_owners_see_usage_against_limits_and_a_button_per_paid_plan(
    team: Team, pro_on_sale: Plan, stripe_sessions: SessionAnswerer
) -> None:
    page = member_client(team.owner).get("/billing/").content.decode()

    assert '<tr data-usage="watchlists"><td>Watchlists</td><td class="num">0</td><td class="num">1' in page
    assert '<tr data-usage="open-streams"><td>Open streams</td><td class="num">0</td><td class="num">2' in page
    assert 'action="/billing/checkout/pro/"' in page
    assert 'action="/billing/checkout/business/"' in page


def test_without_a_secret_key_the_billing_page_says_so_and_nothing_crashes(team: Team, settings: Settings) -> None:
    settings.STRIPE_SECRET_KEY = ""
    client = member_client(team.owner)
    page = client.get("/billing/")
    assert page.status_code == 200
    assert "Billing is not configured on this server" in page.content.decode()

    response = client.post("/billing/checkout/pro/", follow=True)
    assert response.status_code == 200
    assert "Billing is not configured" in response.content.decode()
    assert client.post("/billing/portal/").status_code == 302


def test_the_success_page_says_activating_until_the_webhook_lands(
    team: Team, pro_on_sale: Plan, stripe_sessions: SessionAnswerer
) -> None:
    Organisation.objects.filter(pk=team.organisation.pk).update(stripe_customer_id="cus_success")
    client = member_client(team.owner)
    waiting = client.get("/billing/success/?plan=pro").content.decode()
    assert "Activating Pro…" in waiting
    assert '<meta http-equiv="refresh" content="3">' in waiting

    event = subscription_event("created", customer="cus_success", status="active", price="price_pro_page")
    assert deliver(host_client("localhost"), event).status_code == 200
    done = client.get("/billing/success/?plan=pro").content.decode()
    assert "is on the <strong>Pro</strong> plan" in done
    assert "refresh" not in done
    assert "Plan is now Pro (subscription active)." in client.get("/billing/").content.decode()


@pytest.mark.parametrize("path", ["/", "/watchlists/"])
def test_upgrade_links_lead_to_the_organisations_own_billing_page(team: Team, path: str, settings: Any) -> None:
    page = member_client(team.owner).get(path).content.decode()
    assert "/pricing/" not in page.replace("//localhost/pricing/", "")  # the footer's link to the public site
    assert 'href="/billing/"' in page


def test_the_webhook_is_not_on_an_organisations_host(team: Team, stripe_sessions: SessionAnswerer) -> None:
    event = subscription_event("created", customer="cus_x", status="active", price="price_pro_page")
    assert deliver(Client(HTTP_HOST="acme.localhost"), event).status_code in (302, 403, 404)


def test_a_plan_set_by_staff_is_written_to_the_billing_history(team: Team) -> None:
    organisation = Organisation.objects.get(pk=team.organisation.pk)
    organisation.plan = Plan.objects.get(slug="business")
    organisation_billing_save(organisation=organisation, changed=["plan"])
    organisation.name = "Acme Renamed"
    organisation_billing_save(organisation=organisation, changed=["name"])

    assert [line.description for line in BillingHistory.objects.filter(organisation=organisation)] == [
        "Plan set to Business by Tickerdeck staff."
    ]
    assert "Plan set to Business by Tickerdeck staff." in member_client(team.member).get("/billing/").content.decode()
