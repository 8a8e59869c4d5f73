"""Alerts are reached from each symbol of a watchlist, with the form prefilled."""

import pytest
from django.test import Client

from accounts.models import User
from tenants.models import Organisation
from tests.watchlists.conftest import inside, signed_in
from watchlists.services import watchlist_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(globex: Organisation) -> Client:
    return signed_in(globex, User.objects.get(email="owner@globex.example"))


def test_each_symbol_of_a_watchlist_links_to_a_prefilled_new_alert(globex: Organisation, owner_client: Client) -> None:
    with inside(globex):
        watchlist = watchlist_create(organisation=globex, name="Tech", symbols=["AAPL"])
    assert 'href="/alerts/?symbol=AAPL#new-alert"' in owner_client.get(f"/watchlists/{watchlist.pk}/").content.decode()
