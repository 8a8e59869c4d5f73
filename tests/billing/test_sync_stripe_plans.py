"""sync_stripe_plans against localstripe: a Product and monthly Price per paid plan, idempotent."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pytest_django.fixtures import Settings

from billing import gateway
from billing.models import Plan
from tests.billing.conftest import LocalStripe


def sync() -> str:
    out = StringIO()
    call_command("sync_stripe_plans", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_each_paid_plan_gets_a_product_and_monthly_price_and_a_second_run_changes_nothing(
    stripe_settings: LocalStripe,
) -> None:
    first = sync()
    plans = {plan.slug: plan for plan in Plan.objects.all()}
    assert plans["free"].stripe_price_id == ""
    for slug, cents in (("pro", 2900), ("business", 19900)):
        price = gateway.price_retrieve(price_id=plans[slug].stripe_price_id)
        assert price is not None
        assert (price.product_id, price.unit_amount, price.currency, price.interval, price.active) == (
            plans[slug].stripe_product_id, cents, "usd", "month", True,
        )  # fmt: skip
        assert f"{slug}: created product {plans[slug].stripe_product_id}" in first
        assert f"{slug}: created price {plans[slug].stripe_price_id}" in first

    second = sync()
    assert "nothing to do" in second
    assert {p.slug: (p.stripe_product_id, p.stripe_price_id) for p in Plan.objects.all()} == {
        slug: (plan.stripe_product_id, plan.stripe_price_id) for slug, plan in plans.items()
    }


@pytest.mark.django_db
def test_a_changed_price_makes_a_new_price_and_archives_the_old_one(stripe_settings: LocalStripe) -> None:
    sync()
    pro = Plan.objects.get(slug="pro")
    old_price, product = pro.stripe_price_id, pro.stripe_product_id
    pro.price_monthly = Decimal("35")
    pro.name = "Pro+"
    pro.save()

    out = sync()
    pro.refresh_from_db()
    assert pro.stripe_price_id != old_price
    assert pro.stripe_product_id == product
    assert f"pro: created price {pro.stripe_price_id} (35.00 USD a month), archived {old_price}" in out
    assert "pro: renamed product" in out
    old, new = gateway.price_retrieve(price_id=old_price), gateway.price_retrieve(price_id=pro.stripe_price_id)
    assert old is not None
    assert not old.active
    assert new is not None
    assert (new.unit_amount, new.active) == (3500, True)
    assert gateway.product_retrieve(product_id=product) == gateway.StripeProduct(product, "Pro+", True)
    assert "nothing to do" in sync()


@pytest.mark.django_db
def test_without_a_secret_key_the_command_says_billing_is_not_configured(settings: Settings) -> None:
    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(CommandError, match="not configured"):
        sync()
    assert not Plan.objects.exclude(stripe_price_id="").exists()
