"""The watchlist pages over HTTP on an organisation's host: reads for members, writes for admins."""

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from accounts.models import User
from tenants.models import Organisation, Role
from tests.conftest import host_client
from tests.watchlists.conftest import inside, signed_in
from watchlists.models import Watchlist

pytestmark = pytest.mark.django_db

PRICING = "/billing/"  # the organisation's own billing page (SPEC: upgrade links lead there)


@pytest.fixture
def owner(globex: Organisation) -> User:
    return User.objects.get(email="owner@globex.example")


@pytest.fixture
def admin_client(globex: Organisation, add_member: Any) -> Client:
    return signed_in(globex, add_member(globex, "admin@globex.example", Role.ADMIN))


@pytest.fixture
def member_client(globex: Organisation, add_member: Any) -> Client:
    return signed_in(globex, add_member(globex, "member@globex.example", Role.MEMBER))


@pytest.fixture
def acme_owner_client(acme: Organisation) -> Client:
    return signed_in(acme, User.objects.get(email="owner@acme.example"))


def body(response: Any) -> str:
    return str(response.content.decode())


def flashed(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def watchlists_of(organisation: Organisation) -> list[tuple[str, list[str]]]:
    with inside(organisation):
        return [(w.name, w.symbols) for w in Watchlist.objects.order_by("id")]


# -- list and create -------------------------------------------------------------------------------
def test_the_list_shows_the_watchlists_and_the_plans_allowance(
    globex: Organisation, admin_client: Client, make_watchlist
):
    make_watchlist(globex, "Tech", ("AAPL", "MSFT"))
    make_watchlist(globex, "Energy")

    response = admin_client.get("/watchlists/")

    page = body(response)
    assert response.status_code == 200
    assert "2 of 10 on the Pro plan" in page
    assert page.index("Energy") < page.index("Tech")
    assert "AAPL" in page
    assert 'action="/watchlists/new/"' in page
    assert '<a href="/watchlists/">Watchlists</a>' in page  # the navigation


def test_an_owner_creates_a_watchlist_and_lands_on_it(globex: Organisation, owner: User):
    client = signed_in(globex, owner)

    response = client.post("/watchlists/new/", {"name": "Tech leaders"})

    with inside(globex):
        created = Watchlist.objects.get()
    assert (created.name, created.symbols, created.created_by_id) == ("Tech leaders", [], owner.pk)
    assert response.status_code == 302
    assert response["Location"] == f"/watchlists/{created.pk}/"
    assert flashed(response) == ["Created “Tech leaders”. Now add the symbols it should follow."]


def test_creating_past_the_plans_limit_says_which_limit_and_links_to_the_plans(
    acme: Organisation, acme_owner_client: Client, make_watchlist
):
    make_watchlist(acme, "First")

    response = acme_owner_client.post("/watchlists/new/", {"name": "Second"})

    page = body(response)
    assert response.status_code == 400
    assert "Watchlist limit reached: the Free plan allows 1 watchlist and Acme Capital already has 1." in page
    assert f'href="{PRICING}"' in page
    assert watchlists_of(acme) == [("First", [])]


def test_at_the_limit_the_list_says_so_and_links_to_the_plans(
    acme: Organisation, acme_owner_client: Client, make_watchlist
):
    make_watchlist(acme, "First")

    page = body(acme_owner_client.get("/watchlists/"))

    assert "Watchlist limit reached: the Free plan allows 1 watchlist, and they are all in use." in page
    assert f'href="{PRICING}"' in page


@pytest.mark.parametrize(
    ("name", "message"), [("", "This field is required."), ("tech", "There is already a watchlist called “tech”")]
)
def test_creating_with_a_bad_name_shows_why(
    globex: Organisation, admin_client: Client, make_watchlist, name: str, message: str
):
    make_watchlist(globex, "Tech")

    response = admin_client.post("/watchlists/new/", {"name": name})

    assert response.status_code == 400
    assert message in body(response)
    assert watchlists_of(globex) == [("Tech", [])]


# -- one watchlist ---------------------------------------------------------------------------------
def test_the_detail_page_lists_the_symbols_in_order_with_company_names(
    globex: Organisation, member_client: Client, make_watchlist
):
    watchlist = make_watchlist(globex, "Tech", ("MSFT", "AAPL"))

    response = member_client.get(f"/watchlists/{watchlist.pk}/")

    page = body(response)
    assert response.status_code == 200
    assert page.index("Microsoft") < page.index("Apple Inc.")
    assert "2 of 50 symbols" in page


def test_a_member_reads_but_is_offered_no_changes(globex: Organisation, member_client: Client, make_watchlist):
    watchlist = make_watchlist(globex, "Tech", ("AAPL",))

    page = body(member_client.get(f"/watchlists/{watchlist.pk}/"))

    assert "Only owners and admins of Globex Markets can change watchlists." in page
    assert "/symbols/remove/" not in page
    assert '<form method="post" action="/watchlists/' not in page


def test_adding_symbols(globex: Organisation, admin_client: Client, make_watchlist):
    watchlist = make_watchlist(globex, "Tech", ("MSFT",))

    response = admin_client.post(f"/watchlists/{watchlist.pk}/symbols/", {"symbols": "aapl, nvda  AAPL"})

    assert response.status_code == 302
    assert flashed(response) == ["Added AAPL, NVDA."]
    assert watchlists_of(globex) == [("Tech", ["MSFT", "AAPL", "NVDA"])]


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("AAPL, NOPEX", "Not in the symbol directory: NOPEX."),
        ("MSFT", "Already in this watchlist: MSFT."),
        ("", "This field is required."),
    ],
)
def test_adding_bad_symbols_shows_why_and_keeps_what_was_typed(
    globex: Organisation, admin_client: Client, make_watchlist, typed: str, message: str
):
    watchlist = make_watchlist(globex, "Tech", ("MSFT",))

    response = admin_client.post(f"/watchlists/{watchlist.pk}/symbols/", {"symbols": typed})

    page = body(response)
    assert response.status_code == 400
    assert message in page
    assert f'value="{typed}"' in page or not typed
    assert watchlists_of(globex) == [("Tech", ["MSFT"])]


def test_adding_past_the_plans_symbol_limit_says_which_limit_and_links_to_the_plans(
    acme: Organisation, acme_owner_client: Client, make_watchlist
):
    watchlist = make_watchlist(acme, "Tech", ("AAPL", "MSFT", "NVDA", "AMZN"))

    response = acme_owner_client.post(f"/watchlists/{watchlist.pk}/symbols/", {"symbols": "TSLA META"})

    page = body(response)
    assert response.status_code == 400
    assert "Symbol limit reached: the Free plan allows 5 symbols per watchlist" in page
    assert "so 1 more can be added, not 2" in page
    assert f'href="{PRICING}"' in page
    assert watchlists_of(acme) == [("Tech", ["AAPL", "MSFT", "NVDA", "AMZN"])]


def test_a_full_watchlist_says_so_and_links_to_the_plans(acme: Organisation, acme_owner_client: Client, make_watchlist):
    watchlist = make_watchlist(acme, "Tech", ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA"))

    page = body(acme_owner_client.get(f"/watchlists/{watchlist.pk}/"))

    assert "Symbol limit reached: this watchlist has the 5 symbols the Free plan allows." in page
    assert f'href="{PRICING}"' in page


def test_a_watchlist_over_a_downgraded_plan_warns_that_it_cannot_stream(
    globex: Organisation, admin_client: Client, make_watchlist, plans: Any
):
    watchlist = make_watchlist(globex, "Tech", ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META"))
    Organisation.objects.filter(pk=globex.pk).update(plan=plans["free"])

    page = body(admin_client.get(f"/watchlists/{watchlist.pk}/"))

    assert "more than the 5 a stream follows on the Free plan" in page


def test_renaming(globex: Organisation, admin_client: Client, make_watchlist):
    watchlist = make_watchlist(globex, "Tech")

    response = admin_client.post(f"/watchlists/{watchlist.pk}/rename/", {"name": "Big tech"})

    assert response.status_code == 302
    assert flashed(response) == ["Renamed to “Big tech”."]
    assert watchlists_of(globex) == [("Big tech", [])]


def test_renaming_to_a_taken_name_shows_why(globex: Organisation, admin_client: Client, make_watchlist):
    make_watchlist(globex, "Energy")
    watchlist = make_watchlist(globex, "Tech")

    response = admin_client.post(f"/watchlists/{watchlist.pk}/rename/", {"name": "ENERGY"})

    assert response.status_code == 400
    assert "There is already a watchlist called “ENERGY”" in body(response)
    assert watchlists_of(globex) == [("Energy", []), ("Tech", [])]


def test_removing_a_symbol(globex: Organisation, admin_client: Client, make_watchlist):
    watchlist = make_watchlist(globex, "Tech", ("AAPL", "MSFT"))

    response = admin_client.post(f"/watchlists/{watchlist.pk}/symbols/remove/", {"symbol": "AAPL"})

    assert response.status_code == 302
    assert flashed(response) == ["Removed AAPL."]
    assert watchlists_of(globex) == [("Tech", ["MSFT"])]


def test_removing_a_symbol_that_is_not_there_says_so(globex: Organisation, admin_client: Client, make_watchlist):
    watchlist = make_watchlist(globex, "Tech", ("MSFT",))

    response = admin_client.post(f"/watchlists/{watchlist.pk}/symbols/remove/", {"symbol": "AAPL"}, follow=True)

    assert "AAPL is not in “Tech” (any more); nothing was changed." in body(response)
    assert watchlists_of(globex) == [("Tech", ["MSFT"])]


def test_the_up_and_down_buttons_move_a_symbol(globex: Organisation, admin_client: Client, make_watchlist):
    watchlist = make_watchlist(globex, "Tech", ("AAPL", "MSFT", "NVDA"))
    page = body(admin_client.get(f"/watchlists/{watchlist.pk}/"))
    assert 'aria-label="Move AAPL up" title="Move up" disabled' in page
    assert 'aria-label="Move NVDA down" title="Move down" disabled' in page

    response = admin_client.post(f"/watchlists/{watchlist.pk}/symbols/move/", {"symbol": "NVDA", "position": "1"})
    assert response.status_code == 302
    assert response["Location"] == f"/watchlists/{watchlist.pk}/#symbols"
    admin_client.post(f"/watchlists/{watchlist.pk}/symbols/move/", {"symbol": "AAPL", "position": "1"})

    assert watchlists_of(globex) == [("Tech", ["NVDA", "AAPL", "MSFT"])]


@pytest.mark.parametrize("data", [{"symbol": "AAPL"}, {"symbol": "AAPL", "position": "-1"}, {"position": "0"}])
def test_a_move_that_cannot_be_read_changes_nothing(globex: Organisation, admin_client: Client, make_watchlist, data):
    watchlist = make_watchlist(globex, "Tech", ("AAPL", "MSFT"))

    response = admin_client.post(f"/watchlists/{watchlist.pk}/symbols/move/", data)

    assert flashed(response) == [
        "That change could not be read, so nothing was changed. Reload the page and try again."
    ]
    assert watchlists_of(globex) == [("Tech", ["AAPL", "MSFT"])]


def test_deleting_asks_first_then_deletes(globex: Organisation, admin_client: Client, make_watchlist):
    watchlist = make_watchlist(globex, "Tech", ("AAPL",))

    confirm = admin_client.get(f"/watchlists/{watchlist.pk}/delete/")
    assert confirm.status_code == 200
    assert "Delete “Tech”?" in body(confirm)
    assert watchlists_of(globex) == [("Tech", ["AAPL"])]

    response = admin_client.post(f"/watchlists/{watchlist.pk}/delete/")

    assert response.status_code == 302
    assert response["Location"] == "/watchlists/"
    assert flashed(response) == ["Deleted “Tech”."]
    assert watchlists_of(globex) == []


def test_the_directory_search_works_without_javascript(globex: Organisation, admin_client: Client, make_watchlist):
    watchlist = make_watchlist(globex, "Tech", ("MSFT",))

    page = body(admin_client.get(f"/watchlists/{watchlist.pk}/", {"q": "apple"}))

    assert "Apple Inc." in page
    assert '<input type="hidden" name="symbols" value="AAPL">' in page


# -- who may do what ---------------------------------------------------------------------------------
def write_requests(pk: int) -> list[tuple[str, dict[str, str]]]:
    return [
        ("/watchlists/new/", {"name": "Mine"}),
        (f"/watchlists/{pk}/rename/", {"name": "Mine"}),
        (f"/watchlists/{pk}/symbols/", {"symbols": "NVDA"}),
        (f"/watchlists/{pk}/symbols/remove/", {"symbol": "AAPL"}),
        (f"/watchlists/{pk}/symbols/move/", {"symbol": "MSFT", "position": "0"}),
        (f"/watchlists/{pk}/delete/", {}),
    ]


def test_a_member_gets_a_clear_403_for_every_write(globex: Organisation, member_client: Client, make_watchlist):
    watchlist = make_watchlist(globex, "Tech", ("AAPL", "MSFT"))

    for path, data in write_requests(watchlist.pk):
        response = member_client.post(path, data)
        assert response.status_code == 403, path
        assert "Only owners and admins can change watchlists" in body(response)
    assert member_client.get(f"/watchlists/{watchlist.pk}/delete/").status_code == 403

    assert watchlists_of(globex) == [("Tech", ["AAPL", "MSFT"])]


def test_a_forged_id_is_a_404(globex: Organisation, admin_client: Client, make_watchlist):
    make_watchlist(globex, "Tech", ("AAPL", "MSFT"))

    assert admin_client.get("/watchlists/4242/").status_code == 404
    assert admin_client.get("/watchlists/4242/delete/").status_code == 404
    for path, data in write_requests(4242)[1:]:
        assert admin_client.post(path, data).status_code == 404, path
    assert watchlists_of(globex) == [("Tech", ["AAPL", "MSFT"])]


def test_another_organisations_watchlist_is_a_404_from_this_host_even_with_its_id(
    acme: Organisation, globex: Organisation, admin_client: Client, make_watchlist
):
    theirs = make_watchlist(acme, "Acme secrets", ("AAPL", "MSFT"))

    assert admin_client.get(f"/watchlists/{theirs.pk}/").status_code == 404
    for path, data in write_requests(theirs.pk)[1:]:
        assert admin_client.post(path, data).status_code == 404, path
    assert "Acme secrets" not in body(admin_client.get("/watchlists/"))
    assert watchlists_of(acme) == [("Acme secrets", ["AAPL", "MSFT"])]


def test_a_member_of_another_organisation_is_refused_at_the_door(
    acme: Organisation, globex: Organisation, make_watchlist
):
    watchlist = make_watchlist(globex, "Tech", ("AAPL",))
    stranger = signed_in(globex, User.objects.get(email="owner@acme.example"))

    assert stranger.get(f"/watchlists/{watchlist.pk}/").status_code == 403
    assert stranger.post(f"/watchlists/{watchlist.pk}/delete/").status_code == 403
    assert watchlists_of(globex) == [("Tech", ["AAPL"])]


def test_signed_out_visitors_are_sent_to_log_in(globex: Organisation):
    response = host_client("globex.localhost").get("/watchlists/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/watchlists/"


def test_writes_need_post_and_a_csrf_token(globex: Organisation, owner: User, make_watchlist):
    watchlist = make_watchlist(globex, "Tech", ("AAPL",))
    client = Client(HTTP_HOST="globex.localhost", enforce_csrf_checks=True)
    client.force_login(owner)

    assert client.get(f"/watchlists/{watchlist.pk}/symbols/remove/").status_code == 405
    assert client.post(f"/watchlists/{watchlist.pk}/symbols/remove/", {"symbol": "AAPL"}).status_code == 403
    assert client.post(f"/watchlists/{watchlist.pk}/delete/").status_code == 403
    assert watchlists_of(globex) == [("Tech", ["AAPL"])]
