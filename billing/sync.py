"""Plans in Stripe: a Product and a monthly Price per paid plan, kept in step by `sync_stripe_plans`."""

from decimal import Decimal

from . import gateway
from .conf import billing_settings
from .models import Plan


def _cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def plan_sync_stripe(*, plan: Plan) -> list[str]:
    """Make Stripe sell `plan` at its price; returns what was done, one line per change ([] when in step).

    A Stripe Price is immutable: a new amount (or currency, or product) makes a new Price and archives
    the old one, whose subscribers keep it until they change plan.
    """
    done: list[str] = []
    currency = billing_settings.currency
    if plan.price_monthly <= 0:
        if plan.stripe_price_id:
            gateway.price_archive(price_id=plan.stripe_price_id)
            done.append(f"{plan.slug}: free now, price {plan.stripe_price_id} archived")
            plan.stripe_price_id = ""
            plan.save(update_fields=["stripe_price_id", "updated"])
        return done

    product = gateway.product_retrieve(product_id=plan.stripe_product_id) if plan.stripe_product_id else None
    if product is None:
        product = gateway.product_create(name=plan.name, plan_slug=plan.slug)
        done.append(f"{plan.slug}: created product {product.id}")
    elif product.name != plan.name:
        gateway.product_rename(product_id=product.id, name=plan.name)
        done.append(f"{plan.slug}: renamed product {product.id} to {plan.name!r}")

    price = gateway.price_retrieve(price_id=plan.stripe_price_id) if plan.stripe_price_id else None
    wanted = (product.id, _cents(plan.price_monthly), currency, "month", True)
    if price is None or (price.product_id, price.unit_amount, price.currency, price.interval, price.active) != wanted:
        new = gateway.price_create(product_id=product.id, unit_amount=wanted[1], currency=currency)
        amount = f"{plan.price_monthly:.2f} {currency.upper()}"
        if price is None:
            done.append(f"{plan.slug}: created price {new.id} ({amount} a month)")
        else:
            if price.active:
                gateway.price_archive(price_id=price.id)
            done.append(f"{plan.slug}: created price {new.id} ({amount} a month), archived {price.id}")
        plan.stripe_price_id = new.id

    if plan.stripe_product_id != product.id or done:
        plan.stripe_product_id = product.id
        plan.save(update_fields=["stripe_product_id", "stripe_price_id", "updated"])
    return done


def plans_sync_stripe() -> list[str]:
    """Sync every plan, cheapest first; returns what was done across them."""
    done: list[str] = []
    for plan in Plan.objects.order_by("price_monthly", "slug"):
        done.extend(plan_sync_stripe(plan=plan))
    return done
