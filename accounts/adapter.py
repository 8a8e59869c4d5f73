"""allauth hooks: sign-up happens on the public host only (it creates an organisation)."""

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return getattr(request, "organisation", None) is None
