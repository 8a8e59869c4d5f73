"""An organisation's name is one line of visible text: sign-up, rename and the command refuse control characters."""

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from accounts.models import User
from tenants.models import Organisation
from tenants.services.organisations import organisation_create, organisation_rename
from tests.conftest import PASSWORD, host_client
from tests.tenants.conftest import Team, member_client

pytestmark = pytest.mark.django_db

MESSAGE = "An organisation name is one line of text"

BAD_NAMES = [
    pytest.param("Acme\r\nBcc: victim@example.com", id="CR LF"),
    pytest.param("Acme\nFund", id="LF"),
    pytest.param("Acme\rFund", id="CR"),
    pytest.param("Acme\tFund", id="tab"),
    pytest.param("Acme\x1bFund", id="escape"),
    pytest.param("Acme\x85Fund", id="next line (C1)"),
    pytest.param("Acme\u2028Fund", id="line separator"),
    pytest.param("Acme\u202eFund", id="right-to-left override (Cf)"),
    pytest.param("Acme\u200bFund", id="zero-width space (Cf)"),
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_signup_refuses_a_name_with_control_characters_next_to_the_field(name: str) -> None:
    response = host_client("localhost").post(
        "/signup/",
        {"email": "founder@acme.example", "password1": PASSWORD, "organisation_name": name, "subdomain": "acme-labs"},
    )

    assert response.status_code == 200
    assert MESSAGE in response.context["form"].errors["organisation_name"][0]
    assert not Organisation.objects.exists()
    assert not User.objects.filter(email="founder@acme.example").exists()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_renaming_to_a_name_with_control_characters_is_refused(team: Team, name: str) -> None:
    response = member_client(team.admin).post("/settings/", {"name": name})

    assert response.status_code == 400
    assert MESSAGE in response.content.decode()
    assert Organisation.objects.get(pk=team.organisation.pk).name == "Acme Fund"


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_services_refuse_a_name_with_control_characters(team: Team, make_user: Any, name: str) -> None:
    with pytest.raises(ValidationError) as created:
        organisation_create(name=name, slug="other", owner=make_user("x@example.com"))
    with pytest.raises(ValidationError) as renamed:
        organisation_rename(actor=team.owner, name=name)

    for refused in (created, renamed):
        assert MESSAGE in refused.value.message_dict["name"][0]
    assert list(Organisation.objects.values_list("name", flat=True)) == ["Acme Fund"]


def test_the_command_refuses_a_name_with_a_line_break() -> None:
    with pytest.raises(CommandError, match=MESSAGE):
        call_command(
            "create_organisation",
            *["--name", "Initech\nBcc: x@example.com", "--slug", "initech"],
            *["--owner-email", "bill@initech.example", "--owner-password", "tps-reports-2026!"],
        )

    assert not Organisation.objects.exists()


def test_the_create_service_refuses_a_name_too_long_for_its_column(make_user: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        organisation_create(name="A" * 101, slug="long", owner=make_user("x@example.com"))

    assert "Use at most 100 characters." in refused.value.message_dict["name"]


@pytest.mark.parametrize("name", ["Société Générale", "株式会社", "Acme & Sons — Fund", "  Acme Fund  "])
def test_ordinary_names_are_accepted(team: Team, name: str) -> None:
    organisation = organisation_rename(actor=team.owner, name=name)

    assert organisation.name == name.strip()
