"""Watchlist fixtures: organisations on the seeded plans, members by role, a block in a tenant's schema."""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from tenants.db import activate_public_schema, activate_schema
from tenants.models import Membership, Organisation, Role
from tests.conftest import host_client
from watchlists.models import Watchlist
from watchlists.services import watchlist_create


@contextmanager
def inside(organisation: Organisation) -> Iterator[None]:
    """Run a block in the organisation's schema, as a request on its host does."""
    activate_schema(organisation.schema_name)
    try:
        yield
    finally:
        activate_public_schema()


InSchema = Callable[[Organisation], AbstractContextManager[None]]


@pytest.fixture
def in_schema() -> InSchema:
    return inside


@pytest.fixture
def acme(make_organisation: Any) -> Organisation:
    """On the Free plan: 1 watchlist, 5 symbols each."""
    return make_organisation("acme", plan="free", name="Acme Capital")


@pytest.fixture
def globex(make_organisation: Any) -> Organisation:
    """On the Pro plan: 10 watchlists, 50 symbols each."""
    return make_organisation("globex", plan="pro", name="Globex Markets")


@pytest.fixture
def add_member(make_user: Any) -> Callable[..., User]:
    def add(organisation: Organisation, email: str, role: Role = Role.MEMBER) -> User:
        user: User = make_user(email)
        Membership.objects.create(user=user, organisation=organisation, role=role)
        return user

    return add


@pytest.fixture
def make_watchlist() -> Callable[..., Watchlist]:
    """A watchlist made through the service, in the organisation's schema."""

    def make(organisation: Organisation, name: str = "Tech", symbols: tuple[str, ...] = ()) -> Watchlist:
        with inside(organisation):
            return watchlist_create(organisation=organisation, name=name, symbols=symbols)

    return make


def signed_in(organisation: Organisation, user: User) -> Client:
    """A client on the organisation's host, signed in as `user`."""
    client = host_client(f"{organisation.slug}.localhost")
    client.force_login(user)
    return client


def stored(organisation: Organisation, watchlist_id: int) -> Watchlist | None:
    """The watchlist as the database has it now (None when gone)."""
    with inside(organisation):
        return Watchlist.objects.filter(pk=watchlist_id).first()
