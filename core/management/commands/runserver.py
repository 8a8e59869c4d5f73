"""`manage.py runserver` would serve pages without websockets (no live quotes) and no feed: it says what to run."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Not used here: Tickerdeck serves pages and websockets with uvicorn. Run `make run`."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("args", nargs="*", help="ignored")

    def handle(self, *args: Any, **options: Any) -> None:
        raise CommandError(
            "runserver serves no websockets, so no live quotes. Use `make run` (development: PostgreSQL, "
            "Redis, the web server and the feed, set up and started together), or run the two processes "
            'yourself: `python -m config.server` and `python manage.py run_feed` (README: "Deploying").'
        )
