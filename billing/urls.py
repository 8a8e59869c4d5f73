"""Billing on an organisation's host (SPEC: /billing/, /billing/checkout/<plan slug>/, /billing/portal/)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.billing_page, name="billing"),
    path("checkout/<slug:plan_slug>/", views.checkout, name="billing_checkout"),
    path("start/<slug:plan_slug>/", views.checkout_start, name="billing_start"),
    path("portal/", views.portal, name="billing_portal"),
    path("success/", views.checkout_success, name="billing_success"),
    path("cancel/", views.checkout_cancel, name="billing_cancel"),
]
