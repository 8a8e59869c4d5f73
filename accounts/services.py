"""Writes for users: a new user whose address is known to be theirs, or the existing one with that address."""

from allauth.account.models import EmailAddress
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError

from .models import User
from .validators import email_clean


def owner_get_or_create(*, email: str, password: str) -> User:
    """The user with this e-mail (whose password must match), or a new one with a valid password."""
    email = email_clean(email)
    user = User.objects.filter(email__iexact=email).first()
    if user is not None:
        if not user.check_password(password):
            raise ValidationError({"password": f"A user {email} already exists and that is not their password."})
        return user
    return user_create(email=email, password=password)


def user_create(*, email: str, password: str) -> User:
    """A new user whose e-mail address is known to be theirs (given by staff, or proven by an invitation link).

    Raises ValidationError keyed "password" when the password fails the validators.
    """
    email = email.strip().lower()
    try:
        password_validation.validate_password(password, user=User(email=email))
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user = User.objects.create_user(email=email, password=password)
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
    return user
