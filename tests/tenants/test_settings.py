"""Organisation settings on the organisation host: renaming (owners and admins) and deleting (owners)."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django_tenants.utils import schema_exists

from tenants.models import Domain, Invitation, Membership, Organisation
from tenants.notices import NOTICE_PARAM
from tenants.services.organisations import organisation_delete, organisation_rename
from tests.conftest import host_client
from tests.tenants.conftest import Team, member_client, messages_of

pytestmark = pytest.mark.django_db


def name_of(organisation: Organisation) -> str:
    return Organisation.objects.get(pk=organisation.pk).name


def test_an_admin_sees_the_name_form_but_not_the_delete_form(team: Team) -> None:
    response = member_client(team.admin).get("/settings/")

    body = response.content.decode()
    assert response.status_code == 200
    assert 'value="Acme Fund"' in body
    assert "Delete this organisation" not in body


def test_the_owner_also_sees_the_delete_form(team: Team) -> None:
    body = member_client(team.owner).get("/settings/").content.decode()

    assert "Delete this organisation" in body
    assert "Type <strong>acme</strong> to confirm." in body


def test_a_member_gets_a_403_on_the_settings_page(team: Team) -> None:
    response = member_client(team.member).get("/settings/")

    assert response.status_code == 403
    assert "Only owners and admins can change the settings of Acme Fund." in response.content.decode()


def test_an_admin_renames_the_organisation(team: Team) -> None:
    client = member_client(team.admin)

    response = client.post("/settings/", {"name": "  Acme Capital  "})

    assert response.status_code == 302
    assert name_of(team.organisation) == "Acme Capital"
    assert Organisation.objects.get(pk=team.organisation.pk).slug == "acme"
    assert "The organisation is now called Acme Capital." in messages_of(client, "/settings/")


@pytest.mark.parametrize(("name", "message"), [("", "This field is required."), ("   ", "This field is required.")])
def test_a_blank_name_is_refused(team: Team, name: str, message: str) -> None:
    response = member_client(team.owner).post("/settings/", {"name": name})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert name_of(team.organisation) == "Acme Fund"


def test_an_admin_cannot_delete_the_organisation(team: Team) -> None:
    response = member_client(team.admin).post("/settings/delete/", {"confirmation": "acme"})

    assert response.status_code == 403
    assert "Only an owner can delete Acme Fund." in response.content.decode()
    assert Organisation.objects.filter(pk=team.organisation.pk).exists()


@pytest.mark.parametrize("confirmation", ["", "Acme", "acme fund", "beta"])
def test_a_wrong_confirmation_deletes_nothing(team: Team, confirmation: str) -> None:
    response = member_client(team.owner).post("/settings/delete/", {"confirmation": confirmation})

    assert response.status_code == 400
    assert "Type “acme” exactly to confirm the deletion. Nothing was deleted." in response.content.decode()
    assert Organisation.objects.filter(pk=team.organisation.pk).exists()
    assert schema_exists(team.organisation.schema_name)
    assert Membership.objects.filter(organisation=team.organisation).count() == 3


def test_the_owner_deletes_the_organisation_with_its_schema_and_lands_on_the_public_host(team: Team) -> None:
    Invitation.objects.create(organisation=team.organisation, email="new@example.com", invited_by=team.owner.user)
    schema = team.organisation.schema_name
    client = member_client(team.owner)

    response = client.post("/settings/delete/", {"confirmation": " acme "})

    assert response.status_code == 302
    assert response["Location"].startswith(f"http://localhost/organisations/?{NOTICE_PARAM}=")
    assert not Organisation.objects.filter(slug="acme").exists()
    assert not schema_exists(schema)
    assert not Domain.objects.filter(domain="acme.localhost").exists()
    assert not Membership.objects.filter(user__email__endswith="@acme.example").exists()
    assert not Invitation.objects.exists()
    assert "_auth_user_id" not in client.session
    assert host_client("acme.localhost").get("/").status_code == 404

    public = host_client("localhost")
    public.force_login(team.owner.user)
    landed = public.get(response["Location"].removeprefix("http://localhost"), follow=True)
    body = landed.content.decode()
    assert "The organisation was deleted, with all its data and memberships." in body
    assert "You do not belong to any organisation yet." in body


def test_deleting_one_organisation_leaves_the_others(team: Team, other: Organisation) -> None:
    member_client(team.owner).post("/settings/delete/", {"confirmation": "acme"})

    assert Organisation.objects.filter(pk=other.pk).exists()
    assert schema_exists(other.schema_name)
    assert Membership.objects.filter(organisation=other).count() == 2


def test_the_services_check_roles_and_confirmation(team: Team) -> None:
    with pytest.raises(PermissionDenied):
        organisation_rename(actor=team.member, name="Mine")
    with pytest.raises(PermissionDenied):
        organisation_delete(actor=team.admin, confirmation="acme")
    with pytest.raises(ValidationError):
        organisation_delete(actor=team.owner, confirmation="ACME")
    with pytest.raises(ValidationError):
        organisation_rename(actor=team.owner, name="x" * 101)

    assert name_of(team.organisation) == "Acme Fund"
    assert schema_exists(team.organisation.schema_name)
