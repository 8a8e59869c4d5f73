from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from .models import Domain, Invitation, Membership, Organisation


class MembershipInline(admin.TabularInline[Membership, Organisation]):
    model = Membership
    extra = 0
    autocomplete_fields = ("user", "organisation")


class DomainInline(admin.TabularInline[Domain, Organisation]):
    model = Domain
    extra = 0


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin[Organisation]):
    """Staff view of organisations: plan, members, domain, billing state."""

    list_display = ("name", "slug", "plan", "member_count", "primary_domain", "subscription_status", "created")
    list_filter = ("plan", "subscription_status")
    search_fields = ("name", "slug", "domains__domain", "stripe_customer_id")
    list_select_related = ("plan",)
    readonly_fields = ("schema_name", "created")
    inlines = (DomainInline, MembershipInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organisation]:
        return super().get_queryset(request).annotate(member_total=Count("memberships")).prefetch_related("domains")

    def get_readonly_fields(self, request: HttpRequest, obj: Organisation | None = None) -> tuple[str, ...]:
        # The slug names the schema and the subdomain: fixed once created.
        return (*self.readonly_fields, "slug") if obj else tuple(self.readonly_fields)

    @admin.display(description="Members", ordering="member_total")
    def member_count(self, obj: Organisation) -> int:
        return int(getattr(obj, "member_total", 0))

    @admin.display(description="Domain")
    def primary_domain(self, obj: Organisation) -> str:
        primary = [d.domain for d in obj.domains.all() if d.is_primary]
        return primary[0] if primary else "—"


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    list_display = ("user", "organisation", "role", "created")
    list_filter = ("role",)
    search_fields = ("user__email", "organisation__name", "organisation__slug")
    list_select_related = ("user", "organisation")
    autocomplete_fields = ("user", "organisation")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin[Invitation]):
    list_display = ("email", "organisation", "role", "invited_by", "created", "accepted_at")
    list_filter = ("role",)
    search_fields = ("email", "organisation__name", "organisation__slug")
    list_select_related = ("organisation", "invited_by")
    readonly_fields = ("created", "accepted_at")
    autocomplete_fields = ("organisation", "invited_by")
