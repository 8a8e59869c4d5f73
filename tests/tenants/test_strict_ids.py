"""Ids from outside (signed payloads, URLs) are parsed strictly: a malformed one is a refusal, never a 500."""

from typing import Any

import pytest
from django.core import signing

from tenants.models import Invitation, Membership
from tenants.services.handoff import HANDOFF_SALT
from tenants.services.team import INVITATION_SALT
from tenants.validators import parse_id
from tests.conftest import host_client
from tests.tenants.conftest import Team, member_client, role_of

pytestmark = pytest.mark.django_db

# "²" and "١" pass str.isdigit() (and int() takes "١"); the rest are other JSON a signed payload may carry.
MALFORMED = [
    "²",
    "١",
    "1²",
    " 1",
    "1 ",
    "+1",
    "-1",
    "0",
    "1e3",
    "",
    "9" * 19,
    10**18,
    0,
    -1,
    True,
    1.0,
    None,
    [1],
    {"a": 1},
]


@pytest.mark.parametrize("value", MALFORMED, ids=repr)
def test_parse_id_refuses_anything_but_a_positive_id(value: object) -> None:
    assert parse_id(value) is None


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("007", 7), ("9" * 18, 10**18 - 1), (42, 42)])
def test_parse_id_takes_ascii_digits_and_ints(value: object, expected: int) -> None:
    assert parse_id(value) == expected


@pytest.mark.parametrize("value", ["²", "1²", [1], {"a": 1}, 1.5, 10**30], ids=repr)
def test_a_signed_invitation_token_with_a_malformed_id_is_invalid(team: Team, value: Any) -> None:
    nonce = Invitation.objects.create(organisation=team.organisation, email="new@example.com").token_nonce
    token = signing.dumps({"i": value, "n": nonce}, salt=INVITATION_SALT)

    response = host_client("localhost").get(f"/invitations/{token}/")

    assert response.status_code == 400
    assert "This invitation link is not valid" in response.content.decode()


@pytest.mark.parametrize("field", ["u", "o"])
@pytest.mark.parametrize("value", ["²", "1²", [1], {"a": 1}, 1.5, 10**30], ids=repr)
def test_a_signed_handoff_token_with_a_malformed_id_is_refused(team: Team, field: str, value: Any) -> None:
    payload = {"u": team.owner.user.pk, "o": team.organisation.pk, "n": "n" * 32, field: value}
    token = signing.dumps(payload, salt=HANDOFF_SALT, compress=True)

    assert host_client("acme.localhost").get(f"/handoff/{token}/").status_code == 400


@pytest.mark.parametrize("membership_id", ["²", "١", "99999999999999999999999"])
def test_a_malformed_or_huge_membership_id_in_a_url_is_a_404(team: Team, membership_id: str) -> None:
    client = member_client(team.owner)

    for action in ("role", "remove"):
        assert client.post(f"/members/{membership_id}/{action}/", {"role": "admin"}).status_code == 404
    assert client.post(f"/members/invitations/{membership_id}/withdraw/").status_code == 404
    assert role_of(team.member) == "member"
    assert Membership.objects.filter(organisation=team.organisation).count() == 3
