from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest

from accounts.admin import UserAdmin
from accounts.models import User
from billing.admin import BillingHistoryInline
from billing.selectors import organisation_open_streams
from billing.services import organisation_billing_save

from .models import Domain, Invitation, Membership, Organisation
from .services.organisations import memberships_staff_removed, organisation_staff_delete, user_staff_delete


class NotifyRemovedMembershipsMixin:
    """Admin pages with a MembershipInline: members removed there have their open streams closed."""

    def save_formset(
        self, request: HttpRequest, form: Any, formset: BaseInlineFormSet[Any, Any, Any], change: bool
    ) -> None:
        super().save_formset(request, form, formset, change)  # type: ignore[misc]
        removed = [obj for obj in formset.deleted_objects if isinstance(obj, Membership)]
        memberships_staff_removed(memberships=removed)


class MembershipInline(admin.TabularInline[Membership, Organisation]):
    model = Membership
    extra = 0
    autocomplete_fields = ("user", "organisation")


class DomainInline(admin.TabularInline[Domain, Organisation]):
    model = Domain
    extra = 0


@admin.register(Organisation)
class OrganisationAdmin(NotifyRemovedMembershipsMixin, admin.ModelAdmin[Organisation]):
    """Staff view of organisations: plan, members, domain, billing state."""

    list_display = ("name", "slug", "plan", "subscription_status", "open_streams", "member_count", "primary_domain",
                    "created")  # fmt: skip
    list_filter = ("plan", "subscription_status")
    search_fields = ("name", "slug", "domains__domain", "stripe_customer_id")
    list_select_related = ("plan",)
    readonly_fields = ("schema_name", "created")
    inlines = (DomainInline, MembershipInline, BillingHistoryInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organisation]:
        return super().get_queryset(request).annotate(member_total=Count("memberships")).prefetch_related("domains")

    def get_readonly_fields(self, request: HttpRequest, obj: Organisation | None = None) -> tuple[str, ...]:
        # The slug names the schema and the subdomain: fixed once created.
        return (*self.readonly_fields, "slug") if obj else tuple(self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: Organisation, form: ModelForm[Organisation], change: bool) -> None:
        organisation_billing_save(organisation=obj, changed=form.changed_data if change else ())

    def delete_model(self, request: HttpRequest, obj: Organisation) -> None:
        self._staff_delete(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Organisation]) -> None:
        for organisation in queryset:
            self._staff_delete(request, organisation)

    def _staff_delete(self, request: HttpRequest, organisation: Organisation) -> None:
        try:
            organisation_staff_delete(organisation=organisation)
        except ValidationError as exc:  # its subscription could not be cancelled: it is kept
            self.message_user(request, f"{organisation}: {' '.join(exc.messages)}", level=messages.ERROR)

    @admin.display(description="Open streams")
    def open_streams(self, obj: Organisation) -> str:
        return f"{organisation_open_streams(organisation=obj)} / {obj.plan.max_streams}"

    @admin.display(description="Members", ordering="member_total")
    def member_count(self, obj: Organisation) -> int:
        return int(getattr(obj, "member_total", 0))

    @admin.display(description="Domain")
    def primary_domain(self, obj: Organisation) -> str:
        primary = [d.domain for d in obj.domains.all() if d.is_primary]
        return primary[0] if primary else "—"


class UserMembershipsAdmin(NotifyRemovedMembershipsMixin, UserAdmin):
    """Staff view of users, with the organisations each belongs to; a deleted user's open streams close."""

    inlines = (MembershipInline,)

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        user_staff_delete(user=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            user_staff_delete(user=user)


# accounts registers the user admin without memberships, which it does not know about.
admin.site.unregister(User)
admin.site.register(User, UserMembershipsAdmin)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    list_display = ("user", "organisation", "role", "created")
    list_filter = ("role",)
    search_fields = ("user__email", "organisation__name", "organisation__slug")
    list_select_related = ("user", "organisation")
    autocomplete_fields = ("user", "organisation")

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        super().delete_model(request, obj)
        memberships_staff_removed(memberships=[obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        removed = list(queryset.select_related("organisation"))
        super().delete_queryset(request, queryset)
        memberships_staff_removed(memberships=removed)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin[Invitation]):
    list_display = ("email", "organisation", "role", "invited_by", "created", "accepted_at")
    list_filter = ("role",)
    search_fields = ("email", "organisation__name", "organisation__slug")
    list_select_related = ("organisation", "invited_by")
    readonly_fields = ("created", "accepted_at")
    autocomplete_fields = ("organisation", "invited_by")
