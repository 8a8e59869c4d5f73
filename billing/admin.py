from django.contrib import admin

from .models import Plan


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin[Plan]):
    """Staff edit prices and limits here; the pricing page and live connections follow."""

    list_display = (
        "name",
        "slug",
        "price_monthly",
        "max_symbols_per_stream",
        "max_streams",
        "max_watchlists",
        "max_widgets",
        "max_widget_viewers",
        "realtime",
        "delay_minutes",
        "is_public",
        "is_default",
    )
    list_editable = ("is_public",)
    list_filter = ("realtime", "is_public", "is_default")
    search_fields = ("name", "slug", "stripe_price_id")
    ordering = ("price_monthly",)
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created", "updated")
    fieldsets = (
        (None, {"fields": ("name", "slug", "price_monthly", "stripe_price_id", "is_public", "is_default")}),
        (
            "Limits",
            {
                "fields": (
                    "max_symbols_per_stream",
                    "max_streams",
                    "max_watchlists",
                    "max_widgets",
                    "max_widget_viewers",
                    "realtime",
                    "delay_minutes",
                )
            },
        ),
        ("History", {"fields": ("created", "updated")}),
    )
