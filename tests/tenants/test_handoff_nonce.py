"""Hand-off links are single-use through a server-side random nonce, even for users who never logged in."""

from typing import Any

import pytest
from django.core import signing
from django.test import Client

from accounts.models import User
from tenants.models import Organisation
from tenants.services.handoff import HANDOFF_SALT, handoff_token_create, handoff_token_user
from tests.conftest import host_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(make_organisation: Any, make_user: Any) -> Organisation:
    organisation: Organisation = make_organisation("acme", owner=make_user("owner@acme.example"))
    return organisation


def owner_of(organisation: Organisation) -> User:
    owner: User = organisation.memberships.get().user
    assert owner.last_login is None  # what made the old single-use marker predictable
    return owner


def use(client: Client, token: str) -> int:
    return client.get(f"/handoff/{token}/").status_code


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"l": ""}, id="old marker of a user who never logged in"),
        pytest.param({"l": "", "n": "made-up-nonce-made-up-nonce-made"}, id="made-up nonce"),
        pytest.param({"n": ""}, id="empty nonce"),
        pytest.param({"n": 7}, id="number as nonce"),
    ],
)
def test_a_token_forged_with_the_key_is_refused(acme: Organisation, extra: dict[str, Any]) -> None:
    owner = owner_of(acme)
    forged = signing.dumps({"u": owner.pk, "o": acme.pk, **extra}, salt=HANDOFF_SALT, compress=True)

    client = host_client("acme.localhost")
    assert use(client, forged) == 400
    assert "_auth_user_id" not in client.session


def test_a_genuine_token_works_once_even_when_last_login_stays_empty(acme: Organisation) -> None:
    owner = owner_of(acme)
    token = handoff_token_create(user=owner, organisation=acme)

    first = host_client("acme.localhost")
    assert use(first, token) == 302
    assert first.session["_auth_user_id"] == str(owner.pk)
    # As when two requests race with the token before either log-in is saved.
    User.objects.filter(pk=owner.pk).update(last_login=None)
    second = host_client("acme.localhost")
    assert use(second, token) == 400
    assert "_auth_user_id" not in second.session


def test_the_service_hands_the_user_over_once(acme: Organisation) -> None:
    owner = owner_of(acme)
    token = handoff_token_create(user=owner, organisation=acme)

    assert handoff_token_user(token=token, organisation=acme) == owner
    assert handoff_token_user(token=token, organisation=acme) is None


def test_each_token_has_its_own_nonce(acme: Organisation) -> None:
    owner = owner_of(acme)
    first = handoff_token_create(user=owner, organisation=acme)
    second = handoff_token_create(user=owner, organisation=acme)

    assert handoff_token_user(token=second, organisation=acme) == owner
    assert handoff_token_user(token=first, organisation=acme) == owner


def test_a_genuine_token_used_on_another_organisations_host_is_not_used_up(
    acme: Organisation, make_organisation: Any
) -> None:
    owner = owner_of(acme)
    other = make_organisation("other")
    token = handoff_token_create(user=owner, organisation=acme)

    assert handoff_token_user(token=token, organisation=other) is None
    assert handoff_token_user(token=token, organisation=acme) == owner
