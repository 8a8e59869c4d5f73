"""URLs of the public host (BASE_DOMAIN): marketing pages, sign-up, log-in, staff admin."""

from django.contrib import admin
from django.urls import include, path

from billing.views import pricing
from core.views import landing
from tenants.views import SignupView, organisation_list, organisation_open
from tenants.views_team import invitation

admin.site.site_header = "Tickerdeck staff"
admin.site.site_title = "Tickerdeck staff"

urlpatterns = [
    path("", landing, name="landing"),
    path("pricing/", pricing, name="pricing"),
    path("signup/", SignupView.as_view(), name="signup"),
    path("accounts/signup/", SignupView.as_view(), name="account_signup"),
    path("accounts/", include("allauth.urls")),
    path("organisations/", organisation_list, name="organisation_list"),
    path("organisations/<slug:slug>/open/", organisation_open, name="organisation_open"),
    path("invitations/<str:token>/", invitation, name="invitation"),
    path("admin/", admin.site.urls),
]
