from django.contrib import admin
from django.forms import ModelForm
from django.http import HttpRequest

from .models import LIMIT_FIELDS, Plan
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
