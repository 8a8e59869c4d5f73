"""Services refuse with ValidationError; pages show the refusal on the form that asked."""

from typing import Any

from django.core.exceptions import ValidationError
from django.forms import Form
from django.urls import reverse


def refusal_context(
    form: Form | None, refusal: ValidationError | None, *, limit_codes: frozenset[str]
) -> dict[str, Any]:
    """Put a service's refusal on its form; a plan limit (one of `limit_codes`) also gets a link to the plans."""
    limit_refused = False
    if form is not None and refusal is not None:
        for field, errors in refusal.update_error_dict({}).items():
            form.add_error(field if field in form.fields else None, errors)
            limit_refused = limit_refused or any(error.code in limit_codes for error in errors)
    return {"limit_refused": limit_refused, "plans_url": reverse("billing")}
