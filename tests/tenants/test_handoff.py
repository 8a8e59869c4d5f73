"""The signed, single-use, short-lived link that carries a log-in from the public host to a tenant host."""

from typing import Any

import pytest
from django.test import Client

from tenants.services import handoff
from tenants.services.handoff import handoff_token_create
from tests.conftest import host_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(make_organisation: Any, make_user: Any) -> Any:
    return make_organisation("acme", owner=make_user("owner@acme.example"))


def use(client: Client, token: str) -> int:
    return client.get(f"/handoff/{token}/").status_code


def test_a_handoff_link_works_once(acme: Any) -> None:
    owner = acme.memberships.get().user
    token = handoff_token_create(user=owner, organisation=acme)

    assert use(host_client("acme.localhost"), token) == 302
    assert use(host_client("acme.localhost"), token) == 400


def test_a_handoff_link_expires(acme: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    token = handoff_token_create(user=acme.memberships.get().user, organisation=acme)
    monkeypatch.setattr(handoff, "HANDOFF_MAX_AGE_SECONDS", -1)

    assert use(host_client("acme.localhost"), token) == 400


def test_a_handoff_link_for_one_organisation_does_not_open_another(acme: Any, make_organisation: Any) -> None:
    owner = acme.memberships.get().user
    make_organisation("other")
    token = handoff_token_create(user=owner, organisation=acme)

    client = host_client("other.localhost")
    assert use(client, token) == 400
    assert "_auth_user_id" not in client.session


def test_a_tampered_handoff_link_is_refused(acme: Any) -> None:
    token = handoff_token_create(user=acme.memberships.get().user, organisation=acme)

    assert use(host_client("acme.localhost"), token[:-2] + "xx") == 400
