"""allauth hooks: sign-up happens on the public host only (it creates an organisation)."""

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return getattr(request, "organisation", None) is None

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # allauth keys failed log-ins on "<site domain>:<login>", and without django.contrib.sites the
        # site is the request's host: every organisation's host would give an attacker five more
        # guesses at the same account. An account is one across hosts, so is its limit.
        login = credentials.get("email", credentials.get("username", ""))
        return f"login:{str(login).lower()}"
