"""`manage.py load_symbols`: fill the symbol directory from pytickersymbols (real listed stocks)."""

from typing import Any

from django.core.management.base import BaseCommand

from symbols.services import symbols_load


class Command(BaseCommand):
    help = "Load (or refresh) the symbol directory from the pytickersymbols package; a second run changes nothing."

    def handle(self, *args: Any, **options: Any) -> None:
        loaded = symbols_load()
        if options["verbosity"] >= 1:
            self.stdout.write(f"Symbol directory: {loaded}.")
