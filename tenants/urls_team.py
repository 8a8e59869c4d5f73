"""Organisation-host URLs of the team (members, invitations) and the organisation's settings."""

from django.urls import path

from .views.settings import organisation_delete_view, organisation_settings
from .views.team import invitation_withdraw, member_invite, member_leave, member_remove, member_role, members

urlpatterns = [
    path("members/", members, name="members"),
    path("members/invite/", member_invite, name="member_invite"),
    path("members/leave/", member_leave, name="member_leave"),
    path("members/<int:membership_id>/role/", member_role, name="member_role"),
    path("members/<int:membership_id>/remove/", member_remove, name="member_remove"),
    path("members/invitations/<int:invitation_id>/withdraw/", invitation_withdraw, name="invitation_withdraw"),
    path("settings/", organisation_settings, name="organisation_settings"),
    path("settings/delete/", organisation_delete_view, name="organisation_delete"),
]
