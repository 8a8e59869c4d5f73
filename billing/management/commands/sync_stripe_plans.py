"""`python manage.py sync_stripe_plans`: a Stripe Product and monthly Price per paid plan; idempotent."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing.gateway import GatewayError
from billing.sync import plans_sync_stripe


class Command(BaseCommand):
    help = "Create or update a Stripe Product and monthly Price for every paid plan (a changed price gets a new one)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            done = plans_sync_stripe()
        except GatewayError as exc:
            raise CommandError(str(exc)) from exc
        for line in done:
            self.stdout.write(line)
        self.stdout.write(
            self.style.SUCCESS(f"{len(done)} change(s)." if done else "Stripe is in step: nothing to do.")
        )
