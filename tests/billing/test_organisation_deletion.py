"""Deleting an organisation cancels its Stripe subscription; if Stripe cannot be told, nothing is deleted."""

from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from pytest_django.fixtures import Settings

from accounts.models import User
from billing import gateway
from billing.models import BillingHistory
from tenants.models import Membership, Organisation, Role
from tenants.services.organisations import organisation_delete, organisation_staff_delete
from tests.billing.conftest import LocalStripe
from tests.conftest import host_client
from tests.live import free_port

pytestmark = pytest.mark.django_db


def paying(organisation: Organisation, localstripe: LocalStripe) -> str:
    """Give the organisation a real (localstripe) customer with a card and an active subscription."""
    customer = gateway.customer_create(name=organisation.name, email="o@x.example", organisation_slug=organisation.slug)
    product = gateway.product_create(name="Pro", plan_slug="pro")
    price = gateway.price_create(product_id=product.id, unit_amount=2900, currency="usd")
    card = localstripe.post("/v1/payment_methods", {"type": "card", "card[number]": "4242424242424242",
                            "card[exp_month]": "12", "card[exp_year]": "2030", "card[cvc]": "123"})  # fmt: skip
    localstripe.post(f"/v1/payment_methods/{card['id']}/attach", {"customer": customer})
    localstripe.post(f"/v1/customers/{customer}", {"invoice_settings[default_payment_method]": card["id"]})
    subscription = localstripe.post("/v1/subscriptions", {"customer": customer, "items[0][plan]": price.id})
    assert subscription["status"] == "active"
    Organisation.objects.filter(pk=organisation.pk).update(
        stripe_customer_id=customer, stripe_subscription_id=subscription["id"]
    )
    organisation.refresh_from_db()
    return str(subscription["id"])


def status_at_stripe(localstripe: LocalStripe, subscription_id: str) -> str:
    return str(localstripe.post(f"/v1/subscriptions/{subscription_id}", {}, method="GET")["status"])


def test_the_owner_deleting_the_organisation_cancels_its_subscription(
    stripe_settings: LocalStripe, make_organisation: Callable[..., Organisation]
) -> None:
    organisation = make_organisation("payco")
    subscription = paying(organisation, stripe_settings)
    owner = Membership.objects.get(organisation=organisation, role=Role.OWNER)

    organisation_delete(actor=owner, confirmation="payco")

    assert status_at_stripe(stripe_settings, subscription) == "canceled"
    assert not Organisation.objects.filter(slug="payco").exists()


def test_staff_deleting_an_organisation_cancel_its_subscription_too(
    stripe_settings: LocalStripe, make_organisation: Callable[..., Organisation]
) -> None:
    organisation = make_organisation("staffco")
    subscription = paying(organisation, stripe_settings)

    organisation_staff_delete(organisation=organisation)

    assert status_at_stripe(stripe_settings, subscription) == "canceled"
    assert not Organisation.objects.filter(slug="staffco").exists()


def test_when_stripe_cannot_be_reached_nothing_is_deleted(
    stripe_settings: LocalStripe, settings: Settings, make_organisation: Callable[..., Organisation]
) -> None:
    organisation = make_organisation("downco")
    subscription = paying(organisation, stripe_settings)
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    owner = Membership.objects.get(organisation=organisation, role=Role.OWNER)

    with pytest.raises(ValidationError, match="Nothing was deleted"):
        organisation_delete(actor=owner, confirmation="downco")

    assert Organisation.objects.filter(slug="downco").exists()
    assert status_at_stripe(stripe_settings, subscription) == "active"


def test_an_organisation_that_never_paid_is_deleted_without_stripe(
    settings: Settings, make_organisation: Callable[..., Organisation]
) -> None:
    settings.STRIPE_SECRET_KEY = ""
    organisation = make_organisation("freeco")
    organisation_delete(actor=Membership.objects.get(organisation=organisation), confirmation="freeco")
    assert not Organisation.objects.filter(slug="freeco").exists()


@pytest.fixture
def staff_client() -> Client:
    staff = User.objects.create_superuser(email="staff@tickerdeck.example", password="x-staff-password-1")
    client = host_client("localhost")
    client.force_login(staff)
    return client


def test_staff_see_plan_status_usage_and_billing_history(
    staff_client: Client, make_organisation: Callable[..., Organisation]
) -> None:
    organisation = make_organisation("seenco", plan="pro")
    BillingHistory.objects.create(organisation=organisation, kind="plan", description="Plan is now Pro (test).")

    listing = staff_client.get("/admin/tenants/organisation/").content.decode()
    assert "Open streams" in listing
    assert '<td class="field-open_streams">0 / 10</td>' in listing
    assert '<td class="field-subscription_status">Active</td>' in listing
    page = staff_client.get(f"/admin/tenants/organisation/{organisation.pk}/change/").content.decode()
    assert "Plan is now Pro (test)." in page


def test_an_organisation_whose_subscription_cannot_be_cancelled_stays_and_staff_are_told(
    stripe_settings: LocalStripe, settings: Settings, staff_client: Client,
    make_organisation: Callable[..., Organisation],
) -> None:  # fmt: skip
    organisation = make_organisation("keptco")
    paying(organisation, stripe_settings)
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"

    response = staff_client.post(f"/admin/tenants/organisation/{organisation.pk}/delete/", {"post": "yes"}, follow=True)

    assert "could not be cancelled at Stripe" in response.content.decode()
    assert Organisation.objects.filter(slug="keptco").exists()
