"""Widget pages (owners and admins) and the public script and token, under /widgets/ on an organisation's host."""

from django.urls import path, re_path

from . import public, views
from .models import PUBLIC_ID_PATTERN

app_name = "widgets"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.create, name="create"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/edit/", views.edit, name="edit"),
    path("<int:pk>/active/", views.set_active, name="set_active"),
    path("<int:pk>/delete/", views.delete, name="delete"),
    re_path(rf"^(?P<public_id>{PUBLIC_ID_PATTERN})/embed\.js$", public.embed_js, name="embed"),
    re_path(rf"^(?P<public_id>{PUBLIC_ID_PATTERN})/token/$", public.token, name="token"),
]
