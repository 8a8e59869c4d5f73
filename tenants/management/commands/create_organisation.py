"""`manage.py create_organisation`: what sign-up does, for scripts and staff."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.services import owner_get_or_create
from billing.models import Plan
from tenants.services.organisations import organisation_create


class Command(BaseCommand):
    help = "Create an organisation (schema, domain, owner) on a plan."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True, help="The subdomain, e.g. acme for acme.<BASE_DOMAIN>.")
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--owner-password", required=True)
        parser.add_argument("--plan", default=None, help="A plan slug; the default plan when omitted.")

    def handle(self, *args: Any, **options: Any) -> None:
        plan = None
        if options["plan"]:
            plan = Plan.objects.filter(slug=options["plan"]).first()
            if plan is None:
                known = ", ".join(Plan.objects.values_list("slug", flat=True))
                raise CommandError(f"Unknown plan “{options['plan']}”. Known plans: {known}.")
        try:
            with transaction.atomic():
                owner = owner_get_or_create(email=options["owner_email"], password=options["owner_password"])
                organisation = organisation_create(name=options["name"], slug=options["slug"], owner=owner, plan=plan)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {organisation.name} ({organisation.slug}) on the {organisation.plan.name} plan; "
                f"owner {owner.email}."
            )
        )
