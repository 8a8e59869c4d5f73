"""Fuzzing widget viewer tokens and alert definitions, at their services (no transport in between).

A token that is not one the endpoint issued for this widget, organisation and Origin never lets a
viewer in and never raises; an alert definition is refused with messages keyed by its fields and
nothing stored, or stored exactly as it will be evaluated.
"""

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from hypothesis import example, given
from hypothesis import strategies as st

from alerts.models import Alert, AlertChannel, AlertCondition
from alerts.services import AlertSpec, alert_create, alert_delete
from tests.security.fuzz import Cases, fuzz_settings, fuzz_target, no_error_logged
from tests.security.support import SITE, World
from tests.watchlists.conftest import inside
from widgets.tokens import widget_token_problem

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=600)  # lone surrogates too


# -- widget tokens -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def token_cases() -> Iterator[Cases]:
    with fuzz_target("widget tokens") as cases:
        yield cases


def tampered(token: str, position: int, change: str, character: str) -> str:
    """The token with one character replaced, inserted or deleted (at a position that wraps round)."""
    at = position % (len(token) + 1)
    if change == "insert":
        return token[:at] + character + token[at:]
    at = min(at, len(token) - 1)
    if change == "delete":
        return token[:at] + token[at + 1 :]
    return token[:at] + character + token[at + 1 :]


TAMPERINGS = st.tuples(
    st.integers(min_value=0, max_value=600),
    st.sampled_from(["insert", "delete", "replace"]),
    st.characters(exclude_categories=()),
)
TOKEN_KINDS = {"random": ANY_TEXT, "tampered": TAMPERINGS, "another widget": st.just(()),
               "another organisation": st.just(()), "another origin": st.just(())}  # fmt: skip
TOKENS = st.sampled_from(sorted(TOKEN_KINDS)).flatmap(lambda kind: TOKEN_KINDS[kind].map(lambda detail: (kind, detail)))


@fuzz_settings()
@given(token=TOKENS)
@example(token=("random", "a:b:\ud800"))  # a lone surrogate where the signature is checked
@example(token=("random", ":" * 600))
def test_fuzz_widget_tokens(world: World, token: tuple[str, Any], token_cases: Cases) -> None:
    """Only the token issued for this widget, organisation and Origin is accepted; nothing else raises."""
    a = world.a
    kind, detail = token
    issued = a.widget_token()
    if kind == "random":
        text = detail
    elif kind == "tampered":
        text = tampered(issued, *detail)
    elif kind == "another widget":
        text = a.widget_token(world.b.widget_public_ids[0])
    elif kind == "another organisation":
        text = a.widget_token(schema=world.b.tenant.schema)
    else:
        text = a.widget_token(origin="https://evil.example")
    with no_error_logged():
        problem = widget_token_problem(text, schema_name=a.tenant.schema, public_id=a.widget_public_ids[0], origin=SITE)
    if text == issued:  # a tampering that changed nothing (a character replaced by itself)
        assert problem is None
        token_cases.count("the issued token, accepted")
        return
    assert problem is not None, (kind, text)
    assert problem.message
    assert problem.origin == (kind == "another origin")
    token_cases.count(f"{kind}, refused")


# -- alert definitions ---------------------------------------------------------------------------------
ALERT_FIELDS = {"name", "symbol", "condition", "level", "cooldown_minutes", "channels"}
LEVELS = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(min_value=Decimal("-1001"), max_value=Decimal("1001"), places=4),
    st.decimals(min_value=Decimal("-0.001"), max_value=Decimal("0.001")),
    st.sampled_from([Decimal("1E-30"), Decimal("0.00001"), Decimal("999999999.99999"), Decimal("-0"), Decimal("sNaN")]),
)
RANDOM_SPECS = st.builds(
    AlertSpec,
    name=st.text(max_size=100) | st.sampled_from(["Breakout", " a \t b ", "\x00", "x" * 81]),
    symbol=st.text(max_size=20) | st.sampled_from(["AAPL", " msft ", "NOPE", "BRK.B", "AAPL\x00"]),
    condition=st.sampled_from(AlertCondition.values) | st.text(max_size=20),
    level=LEVELS,
    cooldown_seconds=st.integers(min_value=-(2**63), max_value=2**63) | st.integers(min_value=0, max_value=700_000),
    channels=st.lists(st.sampled_from(AlertChannel.values) | st.text(max_size=12), max_size=4),
)
# Near the edges of what is accepted, so that about half are stored.
PLAUSIBLE_SPECS = st.builds(
    AlertSpec,
    name=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=82),
    symbol=st.sampled_from(["AAPL", " msft ", "googl", "NOPE"]),
    condition=st.sampled_from(AlertCondition.values),
    level=st.decimals(min_value=Decimal("-1000.5"), max_value=Decimal("1000000000.5"), places=4)
    | st.decimals(min_value=Decimal("-2"), max_value=Decimal("2"), places=5),
    cooldown_seconds=st.integers(min_value=-1, max_value=7 * 86_400 + 1),
    channels=st.lists(st.sampled_from([AlertChannel.IN_APP, AlertChannel.EMAIL]), min_size=1, max_size=3)
    | st.lists(st.sampled_from(AlertChannel.values), max_size=3),
)
SPECS = RANDOM_SPECS | PLAUSIBLE_SPECS


@pytest.fixture(scope="module")
def alert_cases() -> Iterator[Cases]:
    with fuzz_target("alert definitions") as cases:
        yield cases


@pytest.mark.django_db
@fuzz_settings()
@given(spec=SPECS)
@example(spec=AlertSpec(name="Tiny", symbol="AAPL", condition=AlertCondition.PRICE_ABOVE, level=Decimal("1E-30")))
@example(spec=AlertSpec(name="\x00", symbol="AAPL", condition=AlertCondition.PRICE_ABOVE, level=Decimal("1")))
def test_fuzz_alert_definitions(world: World, spec: AlertSpec, alert_cases: Cases) -> None:
    """Refused with messages keyed by the form's fields (nothing stored), or stored as it will be evaluated."""
    organisation = world.a.tenant.organisation
    with inside(organisation), no_error_logged():
        before = Alert.objects.count()
        refusal: ValidationError | None = None
        try:
            created = alert_create(organisation=organisation, spec=spec)
        except ValidationError as exc:
            refusal = exc
        if refusal is not None:
            assert set(refusal.message_dict) <= ALERT_FIELDS, refusal.message_dict
            assert all(refusal.message_dict.values())
            assert Alert.objects.count() == before
            alert_cases.count("refused")
            return
        stored = Alert.objects.get(pk=created.pk)
        assert stored.symbol == spec.symbol.strip().upper()
        assert stored.condition == spec.condition
        assert stored.level == spec.level  # what the engine compares prices with is what was asked
        assert stored.cooldown_seconds == spec.cooldown_seconds
        assert set(stored.channels) == set(spec.channels)
        assert stored.name == " ".join(spec.name.split())
        alert_delete(organisation=organisation, alert_id=created.pk)  # room for the next (the plan allows 50)
    alert_cases.count("accepted")
