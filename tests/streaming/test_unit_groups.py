"""Channel-layer group names: one per tenant schema, never shared, never forgeable from a bad name."""

import re
from collections.abc import Callable

import pytest
from channels.layers import BaseChannelLayer
from hypothesis import given
from hypothesis import strategies as st

from streaming.groups import control_group, quotes_group

# The schema names groups.py accepts (PostgreSQL identifiers: at most 63 bytes, lower case).
VALID_SCHEMA = r"[a-z_][a-z0-9_]{0,62}"
schemas = st.from_regex(VALID_SCHEMA, fullmatch=True)
builders = st.sampled_from([quotes_group, control_group])

_LAYER = BaseChannelLayer()


@given(first=schemas, second=schemas)
def test_distinct_schemas_never_share_a_group(first: str, second: str) -> None:
    if first == second:
        assert quotes_group(first) == quotes_group(second)
        return
    names = {quotes_group(first), control_group(first), quotes_group(second), control_group(second)}
    assert len(names) == 4


@given(first=schemas, second=schemas)
def test_quotes_and_control_groups_never_collide(first: str, second: str) -> None:
    assert quotes_group(first) != control_group(second)
    assert quotes_group(first) != control_group(first)


@given(schema=schemas)
def test_group_names_follow_the_spec_form_and_the_channel_layer_accepts_them(schema: str) -> None:
    assert re.fullmatch(rf"t\.{re.escape(schema)}\.q", quotes_group(schema))
    assert re.fullmatch(rf"t\.{re.escape(schema)}\.control", control_group(schema))
    assert _LAYER.require_valid_group_name(quotes_group(schema))
    assert _LAYER.require_valid_group_name(control_group(schema))


def test_known_names() -> None:
    assert quotes_group("org_acme") == "t.org_acme.q"
    assert control_group("org_acme") == "t.org_acme.control"


INVALID_SCHEMAS = [
    "",
    "Org_acme",
    "ORG",
    "org.acme",
    "org_acme.q",
    "t.org_b",
    ".",
    "1org",
    "org-acme",
    "org acme",
    "a" * 64,
    "a" * 100,
    "orgé",
    "org_acme\n",  # `$` in a regex also matches before a trailing newline
    "org_acme\n.q",
]


@pytest.mark.parametrize("schema", INVALID_SCHEMAS)
@pytest.mark.parametrize("builder", [quotes_group, control_group])
def test_invalid_schema_names_are_refused(schema: str, builder: Callable[[str], str]) -> None:
    with pytest.raises(ValueError, match="not a tenant schema name"):
        builder(schema)


# Any string that is not a valid schema: upper case, dots, too long, or simply other characters.
# (A valid name plus a trailing newline is the explicit "org_acme\n" case above, a known bug.)
invalid_schemas = st.one_of(
    st.text(max_size=80).filter(lambda s: re.fullmatch(VALID_SCHEMA, s.removesuffix("\n")) is None),
    st.from_regex(VALID_SCHEMA, fullmatch=True).map(lambda s: s + "." + s),
    st.from_regex(r"[a-z_][a-z0-9_]{63,80}", fullmatch=True),
    st.from_regex(r"[a-z_]{0,10}[A-Z][a-zA-Z0-9_]{0,10}", fullmatch=True),
)


@given(schema=invalid_schemas, builder=builders)
def test_no_invalid_schema_name_yields_a_group(schema: str, builder: Callable[[str], str]) -> None:
    with pytest.raises(ValueError, match="not a tenant schema name"):
        builder(schema)
