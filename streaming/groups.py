"""Channel-layer group names: built here and nowhere else, always carrying the tenant's schema."""

import re

_SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _checked(schema_name: str) -> str:
    if not _SCHEMA_RE.fullmatch(schema_name):
        raise ValueError(f"not a tenant schema name: {schema_name!r}")
    return schema_name


def quotes_group(schema_name: str) -> str:
    """The organisation's quote group: the feed sends it batches of the quotes its members watch."""
    return f"t.{_checked(schema_name)}.q"


def control_group(schema_name: str) -> str:
    """The organisation's control group: plan changes, watchlist edits, widget revocations."""
    return f"t.{_checked(schema_name)}.control"
