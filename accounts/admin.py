from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from tenants.admin import MembershipInline, NotifyRemovedMembershipsMixin
from tenants.services.organisations import user_staff_delete

from .models import User


@admin.register(User)
class UserAdmin(NotifyRemovedMembershipsMixin, DjangoUserAdmin[User]):
    """Staff view of users, with the organisations each belongs to."""

    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_staff", "date_joined", "last_login")
    search_fields = ("email", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    inlines = (MembershipInline,)

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        user_staff_delete(user=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            user_staff_delete(user=user)
