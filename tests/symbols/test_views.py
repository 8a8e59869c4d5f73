"""`GET /symbols/search/` on an organisation's host: members get JSON results with each company's primary listing."""

from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from tenants.models import Organisation
from tests.conftest import host_client

pytestmark = pytest.mark.django_db


def signed_in(organisation: Organisation, email: str) -> Client:
    client = host_client(f"{organisation.slug}.localhost")
    client.force_login(User.objects.get(email=email))
    return client


@pytest.fixture
def member(make_organisation: Any) -> Client:
    return signed_in(make_organisation("globex", plan="pro"), "owner@globex.example")


def test_members_get_json_results_with_the_primary_listing(member: Client) -> None:
    response = member.get("/symbols/search/", {"q": "appl"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "private" in response["Cache-Control"]
    results = response.json()["results"]
    assert results[0] == {"symbol": "AAPL", "name": "Apple Inc.", "exchange": "NASDAQ", "exchange_ticker": "AAPL"}
    assert [r["symbol"] for r in results] == ["AAPL", "APP", "AMAT", "APLE"]


def test_a_foreign_listing_shows_its_home_exchange_and_ticker_there(member: Client) -> None:
    results = member.get("/symbols/search/", {"q": "hsba"}).json()["results"]

    assert results[0] == {"symbol": "HSBA.L", "name": "HSBC", "exchange": "LON", "exchange_ticker": "HSBA"}


def test_an_empty_query_answers_no_results(member: Client) -> None:
    assert member.get("/symbols/search/").json() == {"results": []}
    assert member.get("/symbols/search/", {"q": "  "}).json() == {"results": []}


def test_non_members_are_refused_and_visitors_sent_to_log_in(make_organisation: Any) -> None:
    globex = make_organisation("globex", plan="pro")
    make_organisation("acme")
    stranger = signed_in(globex, "owner@acme.example")

    assert stranger.get("/symbols/search/", {"q": "aapl"}).status_code == 403
    anonymous = host_client("globex.localhost").get("/symbols/search/", {"q": "aapl"})
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")


def test_only_get_is_allowed(member: Client) -> None:
    assert member.post("/symbols/search/", {"q": "aapl"}).status_code == 405
