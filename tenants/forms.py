"""The organisation sign-up form: allauth's account fields plus the organisation's name and subdomain."""

from typing import Any

from allauth.account.forms import SignupForm
from django import forms
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest

from .models import Organisation
from .services import organisation_create
from .validators import SUBDOMAIN_MAX, validate_subdomain


class OrganisationSignupForm(SignupForm):
    """Creates the user and their organisation in one transaction."""

    organisation_name = forms.CharField(label="Organisation name", max_length=100)
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
