"""Log-in that, on an organisation's host, admits that organisation's members only."""

from typing import Any

from allauth.account.forms import LoginForm
from django import forms

from tenants.selectors import membership_get


class OrganisationLoginForm(LoginForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        organisation = getattr(self.request, "organisation", None)
        user = getattr(self, "user", None)
        if self.errors or organisation is None or user is None:
            return cleaned
        if membership_get(user=user, organisation=organisation) is None:
            raise forms.ValidationError(
                "This account is not a member of %(name)s. Log in on the main site to reach your own "
                "organisations, or ask an admin of %(name)s for an invitation.",
                code="not_member",
                params={"name": organisation.name},
            )
        return cleaned
