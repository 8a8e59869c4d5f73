"""Watchlist pages, under /watchlists/ on an organisation's host."""

from django.urls import path

from . import views

app_name = "watchlists"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.create, name="create"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/rename/", views.rename, name="rename"),
    path("<int:pk>/symbols/", views.symbols_add, name="symbols_add"),
    path("<int:pk>/symbols/remove/", views.symbol_remove, name="symbol_remove"),
    path("<int:pk>/symbols/move/", views.symbol_move, name="symbol_move"),
    path("<int:pk>/export.csv", views.export, name="export"),
    path("<int:pk>/delete/", views.delete, name="delete"),
]
