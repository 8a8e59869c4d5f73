"""Tenant isolation over HTTP: members only, per organisation; unknown hosts are a 404."""

from typing import Any

import pytest

from tests.conftest import PASSWORD, host_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_organisations(make_organisation: Any, make_user: Any) -> dict[str, Any]:
    alice = make_user("alice@alpha.example")
    bob = make_user("bob@beta.example")
    return {
        "alpha": make_organisation("alpha", owner=alice, name="Alpha Fund"),
        "beta": make_organisation("beta", owner=bob, name="Beta Bank"),
        "alice": alice,
        "bob": bob,
    }


def test_a_member_sees_their_own_organisations_pages(two_organisations: dict[str, Any]) -> None:
    client = host_client("alpha.localhost")
    client.force_login(two_organisations["alice"])

    for path in ("/", "/members/"):
        response = client.get(path)
        assert response.status_code == 200
        assert "Alpha Fund" in response.content.decode()


@pytest.mark.parametrize("path", ["/", "/members/"])
def test_a_member_of_one_organisation_gets_403_on_anothers_pages(two_organisations: dict[str, Any], path: str) -> None:
    client = host_client("beta.localhost")
    client.force_login(two_organisations["alice"])

    response = client.get(path)

    body = response.content.decode()
    assert response.status_code == 403
    assert "You are not a member of Beta Bank" in body
    assert "http://localhost/organisations/" in body
    assert "bob@beta.example" not in body


def test_anonymous_visitors_are_sent_to_the_tenant_login(two_organisations: dict[str, Any]) -> None:
    response = host_client("alpha.localhost").get("/members/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/members/"


def test_login_on_a_tenant_host_admits_members(two_organisations: dict[str, Any]) -> None:
    client = host_client("alpha.localhost")

    response = client.post("/accounts/login/", {"login": "alice@alpha.example", "password": PASSWORD})

    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_login_on_a_tenant_host_refuses_non_members(two_organisations: dict[str, Any]) -> None:
    client = host_client("beta.localhost")

    response = client.post("/accounts/login/", {"login": "alice@alpha.example", "password": PASSWORD})

    assert response.status_code == 200
    assert "This account is not a member of Beta Bank" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_public_host_lists_only_the_users_own_organisations(two_organisations: dict[str, Any]) -> None:
    client = host_client("localhost")
    client.force_login(two_organisations["alice"])

    body = client.get("/organisations/").content.decode()

    assert "Alpha Fund" in body
    assert "Beta Bank" not in body
    assert client.get("/organisations/beta/open/").status_code == 404


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/members/", "/admin/"])
def test_an_unknown_host_is_a_404_and_never_another_schema(two_organisations: dict[str, Any], path: str) -> None:
    response = host_client("gamma.localhost").get(path)

    assert response.status_code == 404
    assert "No organisation at gamma.localhost" in response.content.decode()


def test_tenant_hosts_have_no_admin(two_organisations: dict[str, Any]) -> None:
    client = host_client("alpha.localhost")
    client.force_login(two_organisations["alice"])

    assert client.get("/admin/").status_code == 404


def test_sign_up_is_closed_on_tenant_hosts(two_organisations: dict[str, Any]) -> None:
    response = host_client("alpha.localhost").get("/accounts/signup/")

    assert "Sign up on the main site" in response.content.decode()
