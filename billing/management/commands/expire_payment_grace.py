"""`python manage.py expire_payment_grace` (every minute): past-due organisations past their grace stop streaming."""

from typing import Any

from django.core.management.base import BaseCommand

from billing.events import organisations_grace_expired_notify


class Command(BaseCommand):
    help = "Close the open streams of past-due organisations whose grace period has ended (4402)."

    def handle(self, *args: Any, **options: Any) -> None:
        expired = organisations_grace_expired_notify()
        for organisation in expired:
            self.stdout.write(f"{organisation.slug}: grace ended, streams paused")
        self.stdout.write(f"{len(expired)} organisation(s) reached the end of their grace period.")
