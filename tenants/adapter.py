"""allauth hooks for many hosts: sign-up and e-mail confirmation on the public host, one log-in limit per account."""

from typing import Any
from urllib.parse import urlencode

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.models import EmailAddress, EmailConfirmation
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse

from .selectors import landing_path, public_url

SIGNUP_NEXT_SESSION_KEY = "tickerdeck_signup_next"


def public_path(name: str, *args: str) -> str:
    """A path of the public host's URLconf, whichever host the request came to."""
    return reverse(name, urlconf=settings.PUBLIC_SCHEMA_URLCONF, args=args)


class AccountAdapter(DefaultAccountAdapter):
    """allauth's adapter, aware of the public host and organisations' hosts (ACCOUNT_ADAPTER)."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return getattr(request, "organisation", None) is None

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # allauth keys failed log-ins on "<site domain>:<login>", and without django.contrib.sites the
        # site is the request's host: every organisation's host would give an attacker five more
        # guesses at the same account. An account is one across hosts, so is its limit.
        login = credentials.get("email", credentials.get("username", ""))
        return f"login:{str(login).lower()}"

    # -- e-mail verification: its pages and links live on the public host --------------------------
    # An organisation's host shows members only (MembershipRequiredMiddleware), and someone with an
    # unconfirmed address is not signed in, so its "check your mail" page and the link would send
    # them back to the log-in form.

    def get_email_confirmation_url(self, request: HttpRequest, emailconfirmation: EmailConfirmation) -> str:
        if request is None:  # sent outside a request: allauth's own URL
            return str(super().get_email_confirmation_url(request, emailconfirmation))
        return public_url(request=request, path=public_path("account_confirm_email", emailconfirmation.key))

    def respond_email_verification_sent(self, request: HttpRequest, user: AbstractBaseUser | None) -> HttpResponseBase:
        if getattr(request, "organisation", None) is None:
            return super().respond_email_verification_sent(request, user)
        return HttpResponseRedirect(public_url(request=request, path=public_path("account_email_verification_sent")))

    def get_email_verification_redirect_url(self, email_address: EmailAddress) -> str:
        """After confirming in a browser that did not sign up: log in, then on to the organisation."""
        # "Start with Pro": the sign-up's next step (its Checkout), in the browser that signed up.
        following = self.request.session.pop(SIGNUP_NEXT_SESSION_KEY, None)
        destination = landing_path(user=email_address.user, following=following)
        if self.request.user.is_authenticated:
            return destination
        return f"{public_path('account_login')}?{urlencode({'next': destination}, safe='/')}"
