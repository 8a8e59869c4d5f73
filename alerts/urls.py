"""Alert pages, under /alerts/ on an organisation's host."""

from django.urls import path

from . import views

app_name = "alerts"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.create, name="create"),
    path("history/", views.history, name="history"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/rotate/", views.rotate, name="rotate"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/edit/", views.edit, name="edit"),
    path("<int:pk>/active/", views.set_active, name="set_active"),
    path("<int:pk>/email/", views.email, name="email"),
    path("<int:pk>/delete/", views.delete, name="delete"),
]
