"""Fixtures of the team tests: an organisation with an owner, an admin and a member, and another organisation."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from accounts.models import User
from tenants import schema_script
from tenants.models import Membership, Organisation, Role, SchemaScript
from tests.conftest import host_client


@dataclass
class Team:
    organisation: Organisation
    owner: Membership
    admin: Membership
    member: Membership


@pytest.fixture
def team(make_organisation: Callable[..., Organisation], make_user: Callable[..., User]) -> Team:
    """Acme Fund (acme.localhost): owner@, admin@ and member@acme.example."""
    acme = make_organisation("acme", owner=make_user("owner@acme.example"), name="Acme Fund")
    return Team(
        organisation=acme,
        owner=acme.memberships.get(role=Role.OWNER),
        admin=Membership.objects.create(user=make_user("admin@acme.example"), organisation=acme, role=Role.ADMIN),
        member=Membership.objects.create(user=make_user("member@acme.example"), organisation=acme, role=Role.MEMBER),
    )


@pytest.fixture
def other(make_organisation: Callable[..., Organisation], make_user: Callable[..., User]) -> Organisation:
    """Beta Bank (beta.localhost), owned by owner@beta.example, with member@beta.example."""
    beta = make_organisation("beta", owner=make_user("owner@beta.example"), name="Beta Bank")
    Membership.objects.create(user=make_user("member@beta.example"), organisation=beta, role=Role.MEMBER)
    return beta


def member_client(membership: Membership) -> Client:
    """A test client on the membership's organisation host, signed in as that member."""
    client = host_client(f"{membership.organisation.slug}.localhost")
    client.force_login(membership.user)
    return client


def role_of(membership: Membership) -> str | None:
    """The membership's role now, or None once it is gone."""
    return Membership.objects.filter(pk=membership.pk).values_list("role", flat=True).first()


def messages_of(client: Client, path: str) -> str:
    """The page body at `path` (where the messages of the previous redirect show)."""
    return client.get(path).content.decode()


@pytest.fixture
def without_pg_dump(settings: Settings) -> Iterator[None]:
    """Sign-up as on a server without pg_dump: no stored or cached template script, so it clones."""
    settings.PG_DUMP = "/nonexistent/pg_dump"
    schema_script.forget()
    SchemaScript.objects.all().delete()  # rolled back with the test
    yield
    schema_script.forget()
