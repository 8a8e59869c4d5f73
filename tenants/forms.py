"""Forms of the tenants app: organisation sign-up and log-in, invitations, and organisation settings.

They parse input only; the services in tenants/services/ decide.
"""

from collections.abc import Sequence
from typing import Any

from allauth.account.forms import LoginForm, SignupForm
from django import forms
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest

from .models import Organisation, Role
from .selectors import membership_get
from .services.organisations import organisation_create
from .validators import SUBDOMAIN_MAX, validate_organisation_name, validate_subdomain


class OrganisationSignupForm(SignupForm):
    """Creates the user and their organisation in one transaction."""

    organisation_name = forms.CharField(
        label="Organisation name", max_length=100, validators=[validate_organisation_name]
    )
    subdomain = forms.CharField(
        label="Subdomain",
        max_length=SUBDOMAIN_MAX,
        help_text="Lower-case letters, digits and hyphens; your dashboard will live at <subdomain>."
        + settings.BASE_DOMAIN,
    )

    field_order = ("email", "password1", "organisation_name", "subdomain")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["subdomain"].widget.attrs.update({"autocapitalize": "none", "spellcheck": "false"})
        self.organisation: Organisation | None = None

    def clean_subdomain(self) -> str:
        slug = str(self.cleaned_data["subdomain"]).strip().lower()
        validate_subdomain(slug)
        if Organisation.objects.filter(slug=slug).exists():
            raise forms.ValidationError(
                "“%(slug)s” is already taken; please choose another subdomain.", code="taken", params={"slug": slug}
            )
        return slug

    def save(self, request: HttpRequest) -> AbstractBaseUser:
        with transaction.atomic():
            user = super().save(request)
            self.organisation = organisation_create(
                name=self.cleaned_data["organisation_name"],
                slug=self.cleaned_data["subdomain"],
                owner=user,
            )
        return user


class OrganisationLoginForm(LoginForm):
    """allauth's log-in that, on an organisation's host, admits that organisation's members only."""

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


class InvitationForm(forms.Form):
    """Invite someone by e-mail, as one of the roles the inviting member may grant."""

    email = forms.EmailField(label="E-mail address")
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.MEMBER)

    def __init__(self, *args: Any, roles: Sequence[Role], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The list offers only grantable roles; any role parses, so that the service refuses a forged
        # one with its own message (a 403) rather than a vague "select a valid choice".
        self.fields["role"].widget.choices = [(role.value, role.label) for role in roles]
        self.fields["email"].widget.attrs.update({"autocomplete": "off", "autocapitalize": "none"})


class InvitationSignupForm(forms.Form):
    """The account of an invited person: the invited address (fixed) and a password."""

    email = forms.EmailField(label="E-mail address", disabled=True)
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].initial = email


class OrganisationRenameForm(forms.Form):
    name = forms.CharField(label="Organisation name", max_length=100, validators=[validate_organisation_name])


class OrganisationDeleteForm(forms.Form):
    confirmation = forms.CharField(
        label="Type the subdomain to confirm",
        # Checked by organisation_delete, whose message says what to type.
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}),
    )


def form_add_errors(form: forms.Form, exc: forms.ValidationError) -> None:
    """Show a service's ValidationError on the form: next to its field when it names one."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)
