"""`manage.py create_widget`: what the widget pages do, for staff and scripts; prints the id and snippet."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.db import public_schema
from tenants.models import Organisation
from tenants.selectors import organisation_host
from widgets.models import WidgetKind, WidgetTheme
from widgets.services import WidgetSpec, widget_create
from widgets.snippets import embed_snippet


class Command(BaseCommand):
    help = "Create a widget of an organisation and print its public id and embed snippet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="The organisation's slug.")
        parser.add_argument("--name", required=True)
        parser.add_argument("--symbols", required=True, help="Comma-separated tickers, e.g. AAPL,MSFT.")
        parser.add_argument(
            "--origin", action="append", required=True, help="A site allowed to show it (repeat for more)."
        )
        parser.add_argument("--kind", choices=WidgetKind.values, default=WidgetKind.QUOTE_TABLE)
        parser.add_argument("--theme", choices=WidgetTheme.values, default=WidgetTheme.LIGHT)
        parser.add_argument(
            "--base-url",
            default=None,
            help="Where the organisation's host is served, e.g. https://acme.example.com "
            "(default: https://<org host>, or http://<org host>:$PORT with DEBUG).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with public_schema():
            organisation = Organisation.objects.select_related("plan").filter(slug=options["org"]).first()
            if organisation is None:
                raise CommandError(f"No organisation with the slug “{options['org']}”.")
            host = organisation_host(organisation=organisation)
        spec = WidgetSpec(
            name=options["name"],
            kind=options["kind"],
            theme=options["theme"],
            symbols=[s.strip().upper() for s in options["symbols"].split(",") if s.strip()],
            allowed_origins=options["origin"],
        )
        organisation.activate()
        try:
            widget = widget_create(organisation=organisation, spec=spec)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        finally:
            organisation.deactivate()
        base_url = options["base_url"] or (f"http://{host}:{settings.PORT}" if settings.DEBUG else f"https://{host}")
        self.stdout.write(
            self.style.SUCCESS(f"Created widget {widget.public_id} ({widget.name}) of {organisation.name}.")
        )
        self.stdout.write(f"Public id: {widget.public_id}")
        self.stdout.write("Snippet:")
        self.stdout.write(embed_snippet(public_id=widget.public_id, organisation_base_url=base_url))
