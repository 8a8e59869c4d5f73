"""Invitations: sent by e-mail from the organisation host, accepted once on the public host within 7 days."""

import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from accounts.models import User
from tenants.models import Invitation, Membership, Organisation, Role
from tenants.services import team as team_services
from tenants.services.team import InvitationError, invitation_accept, invitation_create, invitation_token_create
from tests.conftest import PASSWORD, host_client
from tests.tenants.conftest import Team, member_client, messages_of

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-new-and-long-pass-2026"
REAL_TIME = time.time
CaptureCallbacks = Callable[..., AbstractContextManager[Any]]


@pytest.fixture
def send(django_capture_on_commit_callbacks: CaptureCallbacks) -> Callable[..., Any]:
    """POST the invite form as `inviter`, running the after-commit e-mail as a committed request would."""

    def post(inviter: Membership, email: str, role: str = "member") -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return member_client(inviter).post("/members/invite/", {"email": email, "role": role})

    return post


def invite(inviter: Membership, email: str, role: str = Role.MEMBER) -> str:
    """Invite at service level; return the link's path on the public host."""
    invitation, _ = invitation_create(actor=inviter, email=email, role=role, public_base_url="http://localhost")
    return f"/invitations/{invitation_token_create(invitation=invitation)}/"


def link_in(message: mail.EmailMessage) -> str:
    found = re.search(r"http://\S+/invitations/\S+/", str(message.body))
    assert found, message.body
    return found.group(0)


def pending() -> list[tuple[str, str]]:
    return list(Invitation.objects.filter(accepted_at__isnull=True).values_list("email", "role"))


def members_of(organisation: Organisation) -> set[str]:
    return set(Membership.objects.filter(organisation=organisation).values_list("user__email", flat=True))


# ---------------------------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------------------------
def test_an_admin_invites_by_email_with_a_link_on_the_public_host(team: Team, send: Any) -> None:
    response = send(team.admin, "New.Person@Example.com", "admin")

    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role, invitation.invited_by) == (
        "new.person@example.com",
        "admin",
        team.admin.user,
    )
    assert invitation.accepted_at is None
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.person@example.com"]
    assert message.subject == "Join Acme Fund on Tickerdeck"
    assert "admin@acme.example invited you to join Acme Fund on Tickerdeck, as admin." in message.body
    assert "expires in 7 days" in message.body
    assert link_in(message).startswith("http://localhost/invitations/")
    assert "Invitation sent to new.person@example.com (as admin)." in messages_of(response.client, "/members/")


def test_the_link_keeps_the_port_the_organisation_host_was_reached_on(
    team: Team, django_capture_on_commit_callbacks: CaptureCallbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        member_client(team.owner).post(
            "/members/invite/",
            {"email": "new@example.com", "role": "member"},
            HTTP_HOST="acme.localhost:8000",
            SERVER_PORT="8000",
        )

    assert link_in(mail.outbox[0]).startswith("http://localhost:8000/invitations/")


def test_pending_invitations_are_listed_for_admins(team: Team) -> None:
    invite(team.owner, "new@example.com", Role.ADMIN)

    body = member_client(team.admin).get("/members/").content.decode()

    assert "new@example.com" in body
    assert "Send again" in body
    assert "Withdraw" in body


def test_the_owner_may_invite_an_owner(team: Team, send: Any) -> None:
    assert send(team.owner, "co-founder@example.com", "owner").status_code == 302

    assert pending() == [("co-founder@example.com", "owner")]


def test_an_admin_may_not_invite_an_owner(team: Team, send: Any) -> None:
    response = send(team.admin, "boss@example.com", "owner")

    assert response.status_code == 403
    assert "Only owners can invite someone as an owner." in response.content.decode()
    assert pending() == []
    assert mail.outbox == []


def test_a_member_may_not_invite(team: Team, send: Any) -> None:
    response = send(team.member, "friend@example.com")

    assert response.status_code == 403
    assert "Only owners and admins can invite people to Acme Fund." in response.content.decode()
    assert pending() == []
    assert mail.outbox == []


def test_inviting_a_member_is_refused_next_to_the_address(team: Team, send: Any) -> None:
    response = send(team.owner, "Member@Acme.example")

    assert response.status_code == 400
    assert "member@acme.example is already a member of Acme Fund." in response.content.decode()
    assert pending() == []
    assert mail.outbox == []


def test_a_bad_address_is_refused(team: Team, send: Any) -> None:
    response = send(team.owner, "not-an-address")

    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    assert pending() == []


def test_inviting_a_pending_address_again_resends_and_updates_the_role(team: Team, send: Any) -> None:
    send(team.owner, "new@example.com", "member")

    response = send(team.owner, "NEW@example.com", "admin")

    assert response.status_code == 302
    assert pending() == [("new@example.com", "admin")]
    assert len(mail.outbox) == 2
    assert "new@example.com was already invited; we sent the invitation again (as admin)." in messages_of(
        response.client, "/members/"
    )


def test_an_admin_cannot_turn_an_owners_invitation_into_another(team: Team) -> None:
    invite(team.owner, "boss@example.com", Role.OWNER)

    with pytest.raises(PermissionDenied, match="Only owners can change an invitation"):
        invite(team.admin, "boss@example.com", Role.MEMBER)
    assert pending() == [("boss@example.com", "owner")]


def test_the_database_allows_one_pending_invitation_per_address_and_organisation(team: Team) -> None:
    Invitation.objects.create(organisation=team.organisation, email="new@example.com")

    with pytest.raises(IntegrityError), transaction.atomic():
        Invitation.objects.create(organisation=team.organisation, email="NEW@example.com")


def test_an_admin_withdraws_an_invitation_and_its_link_stops_working(team: Team) -> None:
    link = invite(team.owner, "new@example.com")
    invitation = Invitation.objects.get()

    response = member_client(team.admin).post(f"/members/invitations/{invitation.pk}/withdraw/")

    assert response.status_code == 302
    assert pending() == []
    refused = host_client("localhost").get(link)
    assert refused.status_code == 410
    assert "This invitation is no longer valid" in refused.content.decode()


def test_a_member_cannot_withdraw_an_invitation(team: Team) -> None:
    invite(team.owner, "new@example.com")

    response = member_client(team.member).post(f"/members/invitations/{Invitation.objects.get().pk}/withdraw/")

    assert response.status_code == 403
    assert pending() == [("new@example.com", "member")]


def test_an_invitation_id_of_another_organisation_is_a_404(team: Team, other: Organisation) -> None:
    invite(Membership.objects.get(organisation=other, role=Role.OWNER), "new@example.com")

    response = member_client(team.owner).post(f"/members/invitations/{Invitation.objects.get().pk}/withdraw/")

    assert response.status_code == 404
    assert pending() == [("new@example.com", "member")]


# ---------------------------------------------------------------------------------------------
# Accepting: a new person signs up through the link
# ---------------------------------------------------------------------------------------------
def test_a_new_person_signs_up_through_the_link_and_lands_in_the_organisation(team: Team, send: Any) -> None:
    send(team.admin, "new@example.com", "admin")
    link = link_in(mail.outbox[0]).removeprefix("http://localhost")
    public = host_client("localhost")

    page = public.get(link)
    body = page.content.decode()
    assert page.status_code == 200
    assert "admin@acme.example invited <strong>new@example.com</strong> to join <strong>Acme Fund</strong>" in body
    assert 'value="new@example.com"' in body
    assert "disabled" in body

    response = public.post(link, {"email": "someone-else@example.com", "password": NEW_PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/organisations/acme/open/"
    user = User.objects.get(email="new@example.com")
    assert user.check_password(NEW_PASSWORD)
    assert not User.objects.filter(email="someone-else@example.com").exists()
    assert Membership.objects.get(user=user).role == Role.ADMIN
    assert Invitation.objects.get().accepted_at is not None

    handoff = public.get(response["Location"])
    assert handoff["Location"].startswith("http://acme.localhost/handoff/")
    tenant = host_client("acme.localhost")
    assert tenant.get(handoff["Location"].removeprefix("http://acme.localhost")).status_code == 302
    assert "Acme Fund" in tenant.get("/").content.decode()


def test_a_weak_password_is_refused_and_nothing_is_created(team: Team) -> None:
    link = invite(team.owner, "new@example.com")

    response = host_client("localhost").post(link, {"password": "12345"})

    assert response.status_code == 400
    assert "too short" in response.content.decode()
    assert not User.objects.filter(email="new@example.com").exists()
    assert pending() == [("new@example.com", "member")]


# ---------------------------------------------------------------------------------------------
# Accepting: a person with an account
# ---------------------------------------------------------------------------------------------
def test_someone_with_an_account_is_asked_to_log_in_then_joins(team: Team, other: Organisation) -> None:
    link = invite(team.owner, "member@beta.example")
    public = host_client("localhost")

    page = public.get(link).content.decode()
    assert "Log in as member@beta.example" in page
    assert f'href="/accounts/login/?next={link.replace(":", "%3A")}"' in page

    logged_in = public.post(f"/accounts/login/?next={link}", {"login": "member@beta.example", "password": PASSWORD})
    assert logged_in["Location"] == link
    assert "Join Acme Fund" in public.get(link).content.decode()

    response = public.post(link)

    assert response.status_code == 302
    assert response["Location"] == "/organisations/acme/open/"
    assert "member@beta.example" in members_of(team.organisation)
    assert Invitation.objects.get().accepted_at is not None


def test_signing_up_with_an_address_that_has_an_account_is_refused(team: Team, other: Organisation) -> None:
    link = invite(team.owner, "member@beta.example")

    response = host_client("localhost").post(link, {"password": NEW_PASSWORD})

    assert response.status_code == 409
    assert "An account with member@beta.example already exists: log in to accept" in response.content.decode()
    assert "member@beta.example" not in members_of(team.organisation)
    assert pending() == [("member@beta.example", "member")]


def test_logged_in_as_another_address_is_told_to_log_in_as_the_invited_one(team: Team, other: Organisation) -> None:
    link = invite(team.owner, "new@example.com")
    public = host_client("localhost")
    public.force_login(User.objects.get(email="member@beta.example"))

    page = public.get(link)
    assert page.status_code == 200
    assert "This invitation is for new@example.com, but you are logged in as member@beta.example" in (
        page.content.decode()
    )

    response = public.post(link)

    assert response.status_code == 403
    assert "Log out, then log in as new@example.com" in response.content.decode()
    assert "member@beta.example" not in members_of(team.organisation)
    assert pending() == [("new@example.com", "member")]


# ---------------------------------------------------------------------------------------------
# Links that cannot be used
# ---------------------------------------------------------------------------------------------
def test_a_link_works_once(team: Team) -> None:
    link = invite(team.owner, "new@example.com")
    host_client("localhost").post(link, {"password": NEW_PASSWORD})
    again = host_client("localhost")
    again.force_login(User.objects.get(email="new@example.com"))

    for response in (again.get(link), again.post(link), host_client("localhost").post(link, {"password": "x"})):
        assert response.status_code == 410
        assert "This invitation was already used" in response.content.decode()
    assert Membership.objects.filter(user__email="new@example.com").count() == 1


def test_an_expired_link_is_refused_and_changes_nothing(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    link = invite(team.owner, "new@example.com")
    monkeypatch.setattr(team_services, "INVITATION_MAX_AGE_SECONDS", -1)

    for response in (
        host_client("localhost").get(link),
        host_client("localhost").post(link, {"password": NEW_PASSWORD}),
    ):
        assert response.status_code == 410
        assert "This invitation has expired: links work for 7 days." in response.content.decode()
    assert not User.objects.filter(email="new@example.com").exists()
    assert pending() == [("new@example.com", "member")]


@pytest.mark.parametrize(("age", "status"), [(7 * 86400 - 60, 200), (7 * 86400 + 60, 410)])
def test_a_link_is_valid_for_seven_days(team: Team, monkeypatch: pytest.MonkeyPatch, age: int, status: int) -> None:
    with monkeypatch.context() as past:
        past.setattr(time, "time", lambda: REAL_TIME() - age)
        link = invite(team.owner, "new@example.com")

    assert host_client("localhost").get(link).status_code == status


def test_a_tampered_link_is_refused(team: Team) -> None:
    link = invite(team.owner, "new@example.com")

    response = host_client("localhost").get(link[:-3] + "xx/")

    assert response.status_code == 400
    assert "This invitation link is not valid" in response.content.decode()


def test_an_invitation_to_someone_who_has_joined_since_changes_nothing(team: Team, other: Organisation) -> None:
    link = invite(team.owner, "member@beta.example")
    joined = Membership.objects.create(
        user=User.objects.get(email="member@beta.example"), organisation=team.organisation, role=Role.MEMBER
    )
    public = host_client("localhost")
    public.force_login(joined.user)

    for response in (public.get(link), public.post(link)):
        assert response.status_code == 409
        assert "You are already a member of Acme Fund." in response.content.decode()
    assert pending() == [("member@beta.example", "member")]
    assert Membership.objects.get(pk=joined.pk).role == Role.MEMBER


def test_the_link_of_a_deleted_organisation_is_refused(team: Team) -> None:
    link = invite(team.owner, "new@example.com")
    team.organisation.delete()

    response = host_client("localhost").get(link)

    assert response.status_code == 410
    assert "no longer exists" in response.content.decode()


def test_the_accept_service_refuses_another_user_and_changes_nothing(team: Team, make_user: Any) -> None:
    link = invite(team.owner, "new@example.com")
    token = link.split("/")[2]

    with pytest.raises(InvitationError) as refused:
        invitation_accept(token=token, user=make_user("intruder@example.com"))

    assert refused.value.code == "wrong_account"
    assert pending() == [("new@example.com", "member")]
    assert "intruder@example.com" not in members_of(team.organisation)


def test_the_create_service_validates_the_address(team: Team) -> None:
    with pytest.raises(ValidationError) as refused:
        invite(team.owner, "nope")

    assert "email" in refused.value.message_dict


def test_staff_see_invitations_in_the_admin(team: Team) -> None:
    invite(team.owner, "new@example.com")
    staff = host_client("localhost")
    staff.force_login(User.objects.create_superuser(email="staff@example.com", password=PASSWORD))

    response = staff.get("/admin/tenants/invitation/")

    assert response.status_code == 200
    assert "new@example.com" in response.content.decode()
