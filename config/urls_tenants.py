"""URLs of an organisation's host (<slug>.BASE_DOMAIN): every page needs a member (see MembershipRequiredMiddleware)."""

from django.urls import include, path

from dashboard.views import dashboard
from symbols.views import symbol_search
from tenants.views.organisations import handoff

urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("", include("tenants.urls_team")),
    path("watchlists/", include("watchlists.urls")),
    path("widgets/", include("widgets.urls")),
    path("alerts/", include("alerts.urls")),
    path("billing/", include("billing.urls")),
    path("symbols/search/", symbol_search, name="symbol_search"),
    path("handoff/<str:token>/", handoff, name="handoff"),
    path("accounts/", include("allauth.urls")),
]
