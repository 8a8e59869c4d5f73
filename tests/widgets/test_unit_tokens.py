"""Viewer tokens: signed, expiring, bound to one widget of one organisation and one Origin."""

import time

import pytest
from django.core import signing
from django.test import override_settings

from widgets.tokens import TokenProblem, widget_token_issue, widget_token_problem

SCHEMA, WIDGET, ORIGIN = "org_acme", "w_AAAAAAAAAAAAAAAA", "https://www.example.com"


def check(token: str, **binding: str | None) -> TokenProblem | None:
    return widget_token_problem(
        token,
        schema_name=str(binding.get("schema_name", SCHEMA)),
        public_id=str(binding.get("public_id", WIDGET)),
        origin=binding.get("origin", ORIGIN),
    )


def issued() -> str:
    return widget_token_issue(schema_name=SCHEMA, public_id=WIDGET, origin=ORIGIN)


def test_a_fresh_token_lets_its_viewer_in() -> None:
    assert check(issued()) is None


def test_a_tampered_token_is_refused() -> None:
    token = issued()
    payload, rest = token.split(":", 1)
    problem = check(payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + ":" + rest)
    assert problem is not None
    assert not problem.origin
    assert "not valid" in problem.message


def test_a_token_signed_with_another_key_or_salt_is_refused() -> None:
    other_salt = signing.dumps({"s": SCHEMA, "w": WIDGET, "o": ORIGIN}, salt="another")
    assert check(other_salt) is not None
    with override_settings(SECRET_KEY="x" * 60):
        forged = issued()
    assert check(forged) is not None


def test_an_expired_token_is_refused() -> None:
    token = issued()
    with override_settings(WIDGET_TOKEN_SECONDS=0):
        time.sleep(1.1)
        problem = check(token)
    assert problem is not None
    assert "expired" in problem.message


@pytest.mark.parametrize("binding", [{"public_id": "w_BBBBBBBBBBBBBBBB"}, {"schema_name": "org_other"}])
def test_a_token_of_another_widget_or_organisation_is_refused(binding: dict[str, str]) -> None:
    problem = check(issued(), **binding)
    assert problem is not None
    assert not problem.origin


@pytest.mark.parametrize("origin", ["https://evil.example", None])
def test_a_token_replayed_from_another_origin_is_an_origin_problem(origin: str | None) -> None:
    problem = check(issued(), origin=origin)
    assert problem is not None
    assert problem.origin


@pytest.mark.parametrize("token", ["", "x" * 600, "garbage"])
def test_garbage_is_refused(token: str) -> None:
    assert check(token) is not None
