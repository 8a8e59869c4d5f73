"""Symbol search for autocomplete: the directory by ticker prefix or company name, best first."""

from typing import Any

import pytest

from accounts.models import User
from streaming.directory import symbol_search
from tenants.models import Organisation
from tests.conftest import host_client
from tests.watchlists.conftest import signed_in

pytestmark = pytest.mark.django_db


def tickers(query: str, **kwargs: Any) -> list[str]:
    return [entry.symbol for entry in symbol_search(query=query, **kwargs)]


def test_the_exact_ticker_comes_first_then_ticker_prefixes_best_known_first():
    found = tickers("ms")

    assert found[0] == "MS"
    prefixed = [s for s in found if s.startswith("MS")]
    assert found[: len(prefixed)] == prefixed  # every ticker prefix before any name match
    assert {"MSFT", "MSI", "MSCI", "MSTR"} <= set(prefixed)
    assert found.index("MSFT") < found.index("MSI")  # Microsoft is in more indices than Motorola


def test_ticker_prefixes_come_before_company_names():
    found = tickers("app")

    assert found[0] == "APP"  # AppLovin: the exact ticker
    assert found[1:4] == ["AAPL", "AMAT", "APLE"]  # Apple Inc., Applied Materials, Apple Hospitality


def test_a_company_name_matches_anywhere_in_it_word_starts_first():
    found = tickers("motor")

    assert found[0] == "MSI"  # Motorola Solutions: the name starts with it
    assert {"F", "GM", "7211.T"} <= set(found)  # Ford Motor Company, General Motors, Mitsubishi Motors


def test_search_ignores_case_and_surrounding_space():
    assert tickers("  aPpLe inc ")[0] == "AAPL"
    assert tickers("brk.b") == ["BRK.B"]


def test_at_most_ten_results_each_once():
    found = tickers("a")

    assert len(found) == 10
    assert len(set(found)) == 10
    assert found[0] == "A"  # Agilent Technologies


@pytest.mark.parametrize("query", ["", "   ", "%", "_", "%%%", "\\", "zzzzzzzzz", "x" * 500])
def test_empty_odd_or_unmatched_queries_find_nothing(query: str):
    assert tickers(query) == []


def test_like_wildcards_are_taken_literally():
    assert tickers("A_PL") == []
    assert tickers("A%") == []


# -- the endpoint ------------------------------------------------------------------------------------------
def test_members_get_json_results(make_organisation: Any):
    organisation: Organisation = make_organisation("globex", plan="pro")
    client = signed_in(organisation, User.objects.get(email="owner@globex.example"))

    response = client.get("/symbols/search/", {"q": "appl"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "private" in response["Cache-Control"]
    results = response.json()["results"]
    assert results[0] == {"symbol": "AAPL", "name": "Apple Inc.", "exchange": "FRA"}
    assert [r["symbol"] for r in results] == ["AAPL", "APP", "AMAT", "APLE"]


def test_an_empty_query_answers_no_results(make_organisation: Any):
    organisation: Organisation = make_organisation("globex", plan="pro")
    client = signed_in(organisation, User.objects.get(email="owner@globex.example"))

    assert client.get("/symbols/search/").json() == {"results": []}
    assert client.get("/symbols/search/", {"q": "  "}).json() == {"results": []}


def test_non_members_are_refused_and_visitors_sent_to_log_in(make_organisation: Any):
    make_organisation("globex", plan="pro")
    make_organisation("acme")
    stranger = signed_in(Organisation.objects.get(slug="globex"), User.objects.get(email="owner@acme.example"))

    assert stranger.get("/symbols/search/", {"q": "aapl"}).status_code == 403
    anonymous = host_client("globex.localhost").get("/symbols/search/", {"q": "aapl"})
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")


def test_only_get_is_allowed(make_organisation: Any):
    organisation: Organisation = make_organisation("globex", plan="pro")
    client = signed_in(organisation, User.objects.get(email="owner@globex.example"))

    assert client.post("/symbols/search/", {"q": "aapl"}).status_code == 405
