from typing import Any

from django.contrib import admin
from django.forms import ModelForm
from django.http import HttpRequest

from .models import LIMIT_FIELDS, BillingHistory, Plan, StripeEvent
from .services import plan_save


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin[Plan]):
    """Staff edit prices and limits here; the pricing page and live connections follow."""

    list_display = ("name", "slug", "price_monthly", *LIMIT_FIELDS, "is_public", "is_default")
    list_editable = ("is_public",)
    list_filter = ("realtime", "is_public", "is_default")
    search_fields = ("name", "slug", "stripe_price_id")
    ordering = ("price_monthly",)
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created", "updated")
    fieldsets = (
        (None, {"fields": ("name", "slug", "price_monthly", "stripe_price_id", "is_public", "is_default")}),
        ("Limits", {"fields": LIMIT_FIELDS}),
        ("History", {"fields": ("created", "updated")}),
    )

    def save_model(self, request: HttpRequest, obj: Plan, form: ModelForm[Plan], change: bool) -> None:
        plan_save(plan=obj, changed=form.changed_data if change else ())


class BillingHistoryInline(admin.TabularInline[BillingHistory, Any]):
    """An organisation's billing history on its admin page (written by billing only)."""

    model = BillingHistory
    extra = 0
    fields = ("created", "kind", "description", "stripe_event_id")
    readonly_fields = fields
    can_delete = False
    ordering = ("-created",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin[StripeEvent]):
    """Every Stripe event received, and what billing did with it (unknown customers and prices included)."""

    list_display = ("id", "type", "organisation", "outcome", "created_at_stripe", "received")
    list_filter = ("type",)
    search_fields = ("id", "outcome", "organisation__slug")
    readonly_fields = ("id", "type", "organisation", "outcome", "created_at_stripe", "received")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: StripeEvent | None = None) -> bool:
        return False
