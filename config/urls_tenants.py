"""URLs of an organisation's host (<slug>.BASE_DOMAIN): every page needs a member (see MembershipRequiredMiddleware)."""

from django.urls import include, path

from tenants.views import dashboard, handoff, members

urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("members/", members, name="members"),
    path("handoff/<str:token>/", handoff, name="handoff"),
    path("accounts/", include("allauth.urls")),
]
