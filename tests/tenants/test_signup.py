"""Organisation sign-up over HTTP: the happy path, each validation case, and rollback on failure."""

from typing import Any

import pytest
from django.db import DatabaseError
from django.test import Client
from django_tenants.clone import CloneSchema
from django_tenants.utils import schema_exists

from accounts.models import User
from tenants import schema_script, schema_template
from tenants.models import Domain, Membership, Organisation, Role
from tests.conftest import PASSWORD, host_client

pytestmark = pytest.mark.django_db


def signup_data(**overrides: str) -> dict[str, str]:
    data = {"email": "founder@acme.example", "password1": PASSWORD, "organisation_name": "Acme Labs",
            "subdomain": "acme-labs"}  # fmt: skip
    data.update(overrides)
    return data


def counts() -> tuple[int, int, int, int]:
    return User.objects.count(), Organisation.objects.count(), Domain.objects.count(), Membership.objects.count()


def test_signup_creates_everything_and_lands_the_owner_on_the_tenant_dashboard(public_client: Client) -> None:
    assert public_client.get("/signup/").status_code == 200

    response = public_client.post("/signup/", signup_data())

    assert response.status_code == 302
    assert response["Location"] == "/organisations/acme-labs/open/"
    organisation = Organisation.objects.get(slug="acme-labs")
    assert organisation.name == "Acme Labs"
    assert organisation.plan.slug == "free"
    assert schema_exists(organisation.schema_name)
    assert Domain.objects.get(tenant=organisation).domain == "acme-labs.localhost"
    membership = Membership.objects.get(organisation=organisation)
    assert (membership.user.email, membership.role) == ("founder@acme.example", Role.OWNER)

    open_response = public_client.get(response["Location"])
    assert open_response.status_code == 302
    handoff_url = open_response["Location"]
    assert handoff_url.startswith("http://acme-labs.localhost/handoff/")

    tenant = host_client("acme-labs.localhost")
    landed = tenant.get(handoff_url.removeprefix("http://acme-labs.localhost"))
    assert landed.status_code == 302
    assert landed["Location"] == "/"
    dashboard = tenant.get("/")
    assert dashboard.status_code == 200
    assert "Acme Labs" in dashboard.content.decode()
    assert "Free" in dashboard.content.decode()


def test_signup_normalises_the_subdomain_to_lower_case(public_client: Client) -> None:
    public_client.post("/signup/", signup_data(subdomain="  Acme-Labs "))

    assert Organisation.objects.filter(slug="acme-labs").exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"subdomain": "ab"}, "subdomain", "3 to 40 characters"),
        ({"subdomain": "a" * 41}, "subdomain", "40 characters"),
        ({"subdomain": "www"}, "subdomain", "reserved"),
        ({"subdomain": "admin"}, "subdomain", "reserved"),
        ({"subdomain": "api"}, "subdomain", "reserved"),
        ({"subdomain": "acme_labs"}, "subdomain", "lower-case letters, digits and single hyphens"),
        ({"subdomain": "-acme"}, "subdomain", "lower-case letters"),
        ({"subdomain": "acme--labs"}, "subdomain", "single hyphens"),
        ({"subdomain": "9lives"}, "subdomain", "starting with a letter"),
        ({"subdomain": ""}, "subdomain", "required"),
        ({"organisation_name": ""}, "organisation_name", "required"),
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"password1": "short"}, "password1", "too short"),
        ({"password1": "password123"}, "password1", "too common"),
        ({"password1": "83749261530"}, "password1", "entirely numeric"),
    ],
)
def test_signup_rejects_bad_input_next_to_its_field(
    public_client: Client, overrides: dict[str, str], field: str, message: str
) -> None:
    before = counts()

    response = public_client.post("/signup/", signup_data(**overrides))

    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors[field])
    assert message.lower() in errors.lower()
    assert f'id="id_{field}-errors"' in response.content.decode()
    assert counts() == before


def test_signup_rejects_a_taken_subdomain(public_client: Client, make_organisation: Any) -> None:
    make_organisation("acme-labs")
    before = counts()

    response = public_client.post("/signup/", signup_data())

    assert response.status_code == 200
    assert "already taken" in " ".join(response.context["form"].errors["subdomain"])
    assert counts() == before


def test_signup_rejects_a_registered_email(public_client: Client, make_user: Any) -> None:
    make_user("founder@acme.example")
    before = counts()

    response = public_client.post("/signup/", signup_data(email="Founder@Acme.example"))

    assert response.status_code == 200
    assert "already registered" in " ".join(response.context["form"].errors["email"])
    assert counts() == before


def test_signup_rolls_back_user_organisation_and_schema_when_schema_creation_fails(
    public_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replay = schema_script.schema_replay

    def replay_then_fail(**kwargs: Any) -> bool:
        assert real_replay(**kwargs)
        assert schema_exists("org_acme_labs")  # the schema really exists at this point
        raise DatabaseError("simulated failure after the schema was made")

    monkeypatch.setattr(schema_template, "schema_replay", replay_then_fail)
    signup_fails_leaving_nothing(public_client)


@pytest.mark.usefixtures("without_pg_dump")
def test_signup_rolls_back_a_cloned_schema_too(public_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    real_clone = CloneSchema.clone_schema

    def clone_then_fail(self: CloneSchema, *args: Any, **kwargs: Any) -> None:
        real_clone(self, *args, **kwargs)
        assert schema_exists("org_acme_labs")
        raise DatabaseError("simulated failure after the schema was cloned")

    monkeypatch.setattr(CloneSchema, "clone_schema", clone_then_fail)
    signup_fails_leaving_nothing(public_client)


def signup_fails_leaving_nothing(public_client: Client) -> None:
    before = counts()

    response = public_client.post("/signup/", signup_data())

    assert response.status_code == 200
    assert "nothing was saved" in response.content.decode()
    assert counts() == before
    assert not schema_exists("org_acme_labs")
    assert not User.objects.filter(email="founder@acme.example").exists()
