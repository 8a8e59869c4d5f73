"""Checks of what users are keyed by: their e-mail address."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email


def email_clean(email: str) -> str:
    """The address as users are keyed by (stripped, lower-case); ValidationError keyed "email" when it is not one."""
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError({"email": exc.messages}) from exc
    return email
