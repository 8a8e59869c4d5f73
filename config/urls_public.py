"""URLs of the public host (BASE_DOMAIN): marketing pages, sign-up, log-in, staff admin."""

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from billing.views import pricing, stripe_webhook
from core.views import landing
from streaming.views import feed_status
from tenants.views.organisations import SignupView, organisation_list, organisation_open
from tenants.views.team import invitation

admin.site.site_header = "Tickerdeck staff"
admin.site.site_title = "Tickerdeck staff"

urlpatterns = [
    path("", landing, name="landing"),
    path("pricing/", pricing, name="pricing"),
    path("billing/webhook/", stripe_webhook, name="stripe_webhook"),
    path("signup/", SignupView.as_view(), name="signup"),
    path("accounts/signup/", SignupView.as_view(), name="account_signup"),
    path("accounts/", include("allauth.urls")),
    path("organisations/", organisation_list, name="organisation_list"),
    path("organisations/<slug:slug>/open/", organisation_open, name="organisation_open"),
    path("invitations/<str:token>/", invitation, name="invitation"),
    # Staff log in through allauth, whose rate limits (per address and per account) the admin's own
    # form lacks: an anonymous visitor is sent to allauth's log-in, and a signed-in non-staff user
    # gets a 403. This path comes first so it wins over admin.site.urls' own "login/".
    path("admin/login/", secure_admin_login(admin.site.login)),
    path("admin/feed/", admin.site.admin_view(feed_status), name="admin_feed_status"),
    path("admin/", admin.site.urls),
]
