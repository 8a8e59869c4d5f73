"""Names people give things (watchlists, widgets): spaces tidied, length checked."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction


def name_clean(name: str, *, thing: str, max_length: int) -> str:
    """The name with runs of white space made one space; ValidationError keyed "name" when empty or too long."""
    name = " ".join(name.split())
    if "\x00" in name:  # PostgreSQL stores no NUL character (a form refuses it; a direct call did not)
        raise ValidationError({"name": "Remove the NUL character from the name."})
    if not name:
        raise ValidationError({"name": f"Give the {thing} a name."})
    if len(name) > max_length:
        raise ValidationError({"name": f"Keep the name to {max_length} characters or fewer."})
    return name


def save_unique_name(
    instance: models.Model, *, constraint: str, taken: str, update_fields: list[str] | None = None
) -> None:
    """Save; a lost race on the unique-name `constraint` becomes ValidationError {"name": taken}."""
    try:
        # A savepoint, so a lost race on the unique name leaves the outer transaction usable.
        with transaction.atomic():
            instance.save(update_fields=update_fields)
    except IntegrityError as exc:
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) != constraint:
            raise
        raise ValidationError({"name": taken}) from exc
