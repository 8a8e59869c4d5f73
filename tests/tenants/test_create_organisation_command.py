"""`manage.py create_organisation`."""

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_exists

from accounts.models import User
from tenants.models import Organisation, Role

pytestmark = pytest.mark.django_db

ARGS = ["--name", "Initech", "--slug", "initech", "--owner-email", "bill@initech.example",
        "--owner-password", "tps-reports-2026!"]  # fmt: skip


def test_create_organisation_makes_schema_domain_owner_and_plan(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("create_organisation", *ARGS, "--plan", "pro")

    organisation = Organisation.objects.get(slug="initech")
    assert organisation.plan.slug == "pro"
    assert schema_exists(organisation.schema_name)
    assert organisation.get_primary_domain().domain == "initech.localhost"
    membership = organisation.memberships.get()
    assert (membership.user.email, membership.role) == ("bill@initech.example", Role.OWNER)
    assert membership.user.check_password("tps-reports-2026!")
    assert "Created Initech (initech) on the Pro plan" in capsys.readouterr().out


def test_create_organisation_defaults_to_the_default_plan() -> None:
    call_command("create_organisation", *ARGS)

    assert Organisation.objects.get(slug="initech").plan.slug == "free"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--plan", "platinum"], "Unknown plan “platinum”"),
        (["--slug", "www"], "reserved"),
        (["--owner-password", "123"], "too short"),
        (["--owner-email", "nope"], "valid email"),
    ],
)
def test_create_organisation_refuses_bad_arguments_and_creates_nothing(extra: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("create_organisation", *ARGS, *extra)

    assert not Organisation.objects.exists()
    assert not User.objects.filter(email="bill@initech.example").exists()


def test_create_organisation_refuses_a_taken_slug() -> None:
    call_command("create_organisation", *ARGS)

    with pytest.raises(CommandError, match="already taken"):
        call_command("create_organisation", *ARGS)
    assert Organisation.objects.filter(slug="initech").count() == 1
