from django.apps import AppConfig


class WatchlistsConfig(AppConfig):
    name = "watchlists"
    verbose_name = "Watchlists"
