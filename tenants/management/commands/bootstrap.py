"""`manage.py bootstrap`: migrate every schema, refresh the template schema, seed, optionally a demo."""

import os
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from tenants.demo import demo_ensure


class Command(BaseCommand):
    help = "Set up the database: migrations (public, tenants, template), plans, symbol directory, demo data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--demo", action="store_true", help="Create the demo organisation and logins.")
        parser.add_argument("--skip-symbols", action="store_true", help="Do not load the symbol directory.")

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options["verbosity"])
        quiet = max(verbosity - 1, 0)
        # The template before the organisations: one that signs up meanwhile is made from the new
        # template, or is among those migrated next.
        self.stdout.write("Migrating the public schema…")
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=quiet)
        self.stdout.write(
            "Migrating the template new organisations are made from (and its SQL), then the organisations…"
        )
        call_command("migrate_organisations", interactive=False, verbosity=quiet, stdout=self.stdout)
        if not options["skip_symbols"] and _command_exists("load_symbols"):
            call_command("load_symbols", verbosity=verbosity)
        if options["demo"]:
            password = os.environ.get("DEMO_PASSWORD", "tickerdeck-demo-2026")
            for line in demo_ensure(password=password):
                self.stdout.write(self.style.SUCCESS(line))
        self.stdout.write(self.style.SUCCESS("Database ready."))


def _command_exists(name: str) -> bool:
    from django.core.management import get_commands

    return name in get_commands()
