from django.apps import AppConfig


class SymbolsConfig(AppConfig):
    name = "symbols"
    verbose_name = "Symbol directory"
