"""Invitation links carry a random nonce stored with the invitation: the signing key alone cannot forge one."""

from typing import Any

import pytest
from django.core import mail, signing
from django.db import IntegrityError, transaction

from accounts.models import User
from tenants.models import Invitation, Membership
from tenants.services.team import INVITATION_SALT, invitation_create, invitation_token_create
from tests.conftest import host_client
from tests.tenants.conftest import Team

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-new-and-long-pass-2026"


def invitation_of(team: Team, email: str = "new@example.com", role: str = "admin") -> Invitation:
    invitation, _ = invitation_create(actor=team.owner, email=email, role=role, public_base_url="http://localhost")
    return invitation


def sign_up_through(token: str) -> Any:
    return host_client("localhost").post(f"/invitations/{token}/", {"password": NEW_PASSWORD})


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(lambda pk: {"i": pk}, id="no nonce"),
        pytest.param(lambda pk: {"i": pk, "n": "made-up-nonce-made-up-nonce-made"}, id="made-up nonce"),
        pytest.param(lambda pk: {"i": pk, "n": ""}, id="empty nonce"),
        pytest.param(lambda pk: {"i": pk, "n": None}, id="null nonce"),
        pytest.param(lambda pk: {"i": pk, "n": ["x"]}, id="list nonce"),
    ],
)
def test_a_token_signed_with_the_key_but_without_the_right_nonce_is_invalid(team: Team, forged: Any) -> None:
    invitation = invitation_of(team)
    token = signing.dumps(forged(invitation.pk), salt=INVITATION_SALT)

    for response in (host_client("localhost").get(f"/invitations/{token}/"), sign_up_through(token)):
        assert response.status_code == 400
        assert "This invitation link is not valid" in response.content.decode()
    assert not User.objects.filter(email="new@example.com").exists()
    assert Invitation.objects.get(pk=invitation.pk).is_pending


def test_a_nonce_of_another_invitation_does_not_open_this_one(team: Team) -> None:
    target = invitation_of(team, "target@example.com")
    own = invitation_of(team, "own@example.com")
    token = signing.dumps({"i": target.pk, "n": own.token_nonce}, salt=INVITATION_SALT)

    assert sign_up_through(token).status_code == 400
    assert not Membership.objects.filter(user__email="target@example.com").exists()


def test_the_genuine_link_carries_the_nonce_and_works(team: Team) -> None:
    invitation = invitation_of(team)

    response = sign_up_through(invitation_token_create(invitation=invitation))

    assert response.status_code == 302
    assert Membership.objects.filter(user__email="new@example.com", role="admin").exists()


def test_every_invitation_gets_its_own_long_random_nonce(team: Team) -> None:
    first = invitation_of(team, "a@example.com")
    second = invitation_of(team, "b@example.com")
    direct = Invitation.objects.create(organisation=team.organisation, email="c@example.com")

    nonces = {first.token_nonce, second.token_nonce, direct.token_nonce}
    assert len(nonces) == 3
    assert all(len(nonce) >= 32 for nonce in nonces)


def test_the_database_refuses_an_invitation_without_a_nonce(team: Team) -> None:
    invitation = invitation_of(team)

    with pytest.raises(IntegrityError), transaction.atomic():
        Invitation.objects.filter(pk=invitation.pk).update(token_nonce="")


def test_sending_again_keeps_the_nonce_so_the_first_e_mail_still_works(team: Team) -> None:
    first = invitation_of(team, role="member")
    first_link = invitation_token_create(invitation=first)

    again = invitation_of(team, role="admin")

    assert again.pk == first.pk
    assert again.token_nonce == first.token_nonce
    assert sign_up_through(first_link).status_code == 302
    assert Membership.objects.get(user__email="new@example.com").role == "admin"


def test_the_e_mailed_link_is_the_token_with_the_nonce(team: Team, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        invitation = invitation_of(team)

    assert f"/invitations/{invitation_token_create(invitation=invitation)}/" in str(mail.outbox[0].body)
