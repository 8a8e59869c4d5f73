"""Team management on the organisation host: the members page, roles, removal, leaving, and who may do what."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from tenants.models import Membership, Role
from tenants.notices import NOTICE_PARAM
from tenants.roles import membership_can_manage, roles_grantable
from tenants.services.team import membership_leave, membership_remove, membership_role_change
from tests.conftest import host_client
from tests.tenants.conftest import Team, member_client, messages_of, role_of

pytestmark = pytest.mark.django_db


def change_role(client: Client, target: Membership, role: str) -> int:
    return client.post(f"/members/{target.pk}/role/", {"role": role}).status_code


def remove(client: Client, target: Membership) -> int:
    return client.post(f"/members/{target.pk}/remove/").status_code


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------
def test_the_members_page_lists_everyone_with_their_role_owners_first(team: Team) -> None:
    body = member_client(team.member).get("/members/").content.decode()

    table = body[body.index("<tbody>") :]
    owner, admin, member = (table.index(f"{who}@acme.example") for who in ("owner", "admin", "member"))
    assert owner < admin < member
    assert "<td>Owner</td>" in body
    assert "<td>Admin</td>" in body
    assert "(you)" in body
    assert "Leave organisation" in body


def test_a_member_sees_no_management_controls(team: Team) -> None:
    body = member_client(team.member).get("/members/").content.decode()

    assert "Send invitation" not in body
    assert "Remove" not in body
    assert 'name="role"' not in body
    assert "Pending invitations" not in body


def test_an_admin_may_manage_admins_and_members_but_not_owners(team: Team) -> None:
    body = member_client(team.admin).get("/members/").content.decode()

    assert "Send invitation" in body
    assert f'action="/members/{team.member.pk}/remove/"' in body
    assert f'action="/members/{team.admin.pk}/role/"' in body
    assert f'action="/members/{team.owner.pk}/role/"' not in body
    assert f'action="/members/{team.owner.pk}/remove/"' not in body
    assert '<option value="owner"' not in body


def test_the_only_owner_is_told_why_there_is_no_leave_button(team: Team) -> None:
    body = member_client(team.owner).get("/members/").content.decode()

    assert "The only owner cannot leave: make someone else an owner first." in body
    assert 'action="/members/leave/"' not in body


def test_settings_appear_in_the_navigation_of_owners_and_admins_only(team: Team) -> None:
    assert 'href="/settings/"' in member_client(team.owner).get("/").content.decode()
    assert 'href="/settings/"' in member_client(team.admin).get("/").content.decode()
    assert 'href="/settings/"' not in member_client(team.member).get("/").content.decode()


@pytest.mark.parametrize("path", ["/members/invite/", "/members/leave/", "/settings/delete/"])
def test_actions_only_accept_post(team: Team, path: str) -> None:
    assert member_client(team.owner).get(path).status_code == 405


# ---------------------------------------------------------------------------------------------
# Roles
# ---------------------------------------------------------------------------------------------
def test_the_owner_makes_a_member_an_admin(team: Team) -> None:
    client = member_client(team.owner)

    assert change_role(client, team.member, "admin") == 302
    assert role_of(team.member) == Role.ADMIN
    assert "member@acme.example’s role is now Admin." in messages_of(client, "/members/")


def test_the_owner_makes_and_unmakes_owners(team: Team) -> None:
    client = member_client(team.owner)

    assert change_role(client, team.admin, "owner") == 302
    assert role_of(team.admin) == Role.OWNER
    assert change_role(client, team.admin, "member") == 302
    assert role_of(team.admin) == Role.MEMBER


def test_an_admin_makes_a_member_an_admin_and_back(team: Team) -> None:
    client = member_client(team.admin)

    assert change_role(client, team.member, "admin") == 302
    assert role_of(team.member) == Role.ADMIN
    assert change_role(client, team.member, "member") == 302
    assert role_of(team.member) == Role.MEMBER


def test_an_admin_cannot_make_anyone_an_owner(team: Team) -> None:
    response = member_client(team.admin).post(f"/members/{team.member.pk}/role/", {"role": "owner"})

    assert response.status_code == 403
    assert "Only owners can make someone an owner." in response.content.decode()
    assert role_of(team.member) == Role.MEMBER


def test_an_admin_cannot_change_an_owners_role(team: Team) -> None:
    response = member_client(team.admin).post(f"/members/{team.owner.pk}/role/", {"role": "member"})

    assert response.status_code == 403
    assert "Only owners can change an owner&#x27;s role." in response.content.decode()
    assert role_of(team.owner) == Role.OWNER


def test_the_last_owner_cannot_be_demoted(team: Team) -> None:
    client = member_client(team.owner)

    assert change_role(client, team.owner, "admin") == 302

    assert role_of(team.owner) == Role.OWNER
    assert "owner@acme.example is the only owner of Acme Fund. Make someone else an owner first." in messages_of(
        client, "/members/"
    )


def test_an_owner_may_step_down_once_there_is_another_owner(team: Team) -> None:
    client = member_client(team.owner)
    change_role(client, team.admin, "owner")

    assert change_role(client, team.owner, "member") == 302

    assert role_of(team.owner) == Role.MEMBER
    assert role_of(team.admin) == Role.OWNER


def test_an_unknown_role_is_refused_with_a_message(team: Team) -> None:
    client = member_client(team.owner)

    assert change_role(client, team.member, "emperor") == 302

    assert role_of(team.member) == Role.MEMBER
    assert "“emperor” is not a role" in messages_of(client, "/members/")


# ---------------------------------------------------------------------------------------------
# Removing and leaving
# ---------------------------------------------------------------------------------------------
def test_an_admin_removes_a_member_who_then_loses_access(team: Team) -> None:
    removed = member_client(team.member)
    client = member_client(team.admin)

    assert remove(client, team.member) == 302

    assert role_of(team.member) is None
    assert "member@acme.example was removed from Acme Fund." in messages_of(client, "/members/")
    assert removed.get("/").status_code == 403


def test_an_admin_cannot_remove_an_owner(team: Team) -> None:
    response = member_client(team.admin).post(f"/members/{team.owner.pk}/remove/")

    assert response.status_code == 403
    assert "Only owners can remove an owner." in response.content.decode()
    assert role_of(team.owner) == Role.OWNER


def test_an_owner_removes_another_owner(team: Team) -> None:
    client = member_client(team.owner)
    change_role(client, team.admin, "owner")

    assert remove(client, team.admin) == 302

    assert role_of(team.admin) is None


def test_removing_yourself_points_to_leave(team: Team) -> None:
    client = member_client(team.owner)

    assert remove(client, team.owner) == 302

    assert role_of(team.owner) == Role.OWNER
    assert "To remove yourself, use “Leave organisation”." in messages_of(client, "/members/")


def test_a_member_leaves_and_lands_on_your_organisations_on_the_public_host(team: Team) -> None:
    client = member_client(team.member)

    response = client.post("/members/leave/")

    assert response.status_code == 302
    assert response["Location"].startswith(f"http://localhost/organisations/?{NOTICE_PARAM}=")
    assert role_of(team.member) is None
    assert "_auth_user_id" not in client.session

    public = host_client("localhost")
    public.force_login(team.member.user)
    landed = public.get(response["Location"].removeprefix("http://localhost"), follow=True)
    assert landed.redirect_chain == [("/organisations/", 302)]
    assert "You left the organisation." in landed.content.decode()


def test_the_public_host_link_keeps_the_port_of_the_request(team: Team) -> None:
    client = member_client(team.member)

    response = client.post("/members/leave/", HTTP_HOST="acme.localhost:8000", SERVER_PORT="8000")

    assert response["Location"].startswith("http://localhost:8000/organisations/?")


def test_a_tampered_notice_is_not_shown(team: Team) -> None:
    public = host_client("localhost")
    public.force_login(team.member.user)

    response = public.get(f"/organisations/?{NOTICE_PARAM}=You%20won%20a%20prize")

    assert response.status_code == 200
    assert "You won a prize" not in response.content.decode()


def test_the_last_owner_cannot_leave(team: Team) -> None:
    client = member_client(team.owner)

    response = client.post("/members/leave/")

    assert response.status_code == 302
    assert response["Location"] == "/members/"
    assert role_of(team.owner) == Role.OWNER
    assert "You are the only owner of Acme Fund. Make another member an owner before you leave" in messages_of(
        client, "/members/"
    )


# ---------------------------------------------------------------------------------------------
# Refusals: members, and ids of another organisation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        ("/members/invite/", {"email": "new@acme.example", "role": "member"}, "Only owners and admins can invite"),
        ("/members/{admin}/role/", {"role": "member"}, "Only owners and admins can change roles in Acme Fund."),
        ("/members/{admin}/remove/", {}, "Only owners and admins can remove members of Acme Fund."),
        ("/settings/", {"name": "Mine now"}, "Only owners and admins can change the settings of Acme Fund."),
        ("/settings/delete/", {"confirmation": "acme"}, "Only an owner can delete Acme Fund."),
    ],
)
def test_a_member_gets_a_403_for_admin_actions_and_nothing_changes(
    team: Team, path: str, data: dict[str, str], message: str
) -> None:
    before = sorted(Membership.objects.values_list("pk", "role"))

    response = member_client(team.member).post(path.format(admin=team.admin.pk), data)

    assert response.status_code == 403
    assert message in response.content.decode()
    assert sorted(Membership.objects.values_list("pk", "role")) == before
    team.organisation.refresh_from_db()
    assert team.organisation.name == "Acme Fund"
    assert not team.organisation.invitations.exists()


@pytest.mark.parametrize("action", ["role", "remove"])
def test_a_membership_id_of_another_organisation_is_a_404(team: Team, other: object, action: str) -> None:
    victim = Membership.objects.get(user__email="member@beta.example")

    response = member_client(team.owner).post(f"/members/{victim.pk}/{action}/", {"role": "owner"})

    assert response.status_code == 404
    assert role_of(victim) == Role.MEMBER


# ---------------------------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------------------------
def test_who_may_grant_which_role() -> None:
    def grant(role: Role) -> tuple[Role, ...]:
        return roles_grantable(actor=Membership(role=role))

    assert grant(Role.OWNER) == (Role.OWNER, Role.ADMIN, Role.MEMBER)
    assert grant(Role.ADMIN) == (Role.ADMIN, Role.MEMBER)
    assert grant(Role.MEMBER) == ()


def test_managing_is_limited_to_the_same_organisation(team: Team, other: object) -> None:
    foreign = Membership.objects.get(user__email="member@beta.example")

    assert membership_can_manage(actor=team.owner, target=team.member)
    assert not membership_can_manage(actor=team.owner, target=foreign)
    assert not membership_can_manage(actor=team.admin, target=team.owner)
    assert not membership_can_manage(actor=team.member, target=team.member)


def test_the_role_service_refuses_a_member_of_another_organisation(team: Team, other: object) -> None:
    foreign = Membership.objects.get(user__email="member@beta.example")

    with pytest.raises(Membership.DoesNotExist):
        membership_role_change(actor=team.owner, target=foreign, role=Role.ADMIN)
    assert role_of(foreign) == Role.MEMBER


def test_the_role_service_rereads_roles_so_a_demoted_admin_is_refused(team: Team) -> None:
    stale_admin = Membership.objects.get(pk=team.admin.pk)
    Membership.objects.filter(pk=team.admin.pk).update(role=Role.MEMBER)

    with pytest.raises(PermissionDenied):
        membership_role_change(actor=stale_admin, target=team.member, role=Role.ADMIN)
    assert role_of(team.member) == Role.MEMBER


def test_two_owners_cannot_demote_each_other_down_to_none(team: Team) -> None:
    membership_role_change(actor=team.owner, target=team.admin, role=Role.OWNER)
    second_owner = Membership.objects.get(pk=team.admin.pk)

    membership_role_change(actor=team.owner, target=second_owner, role=Role.MEMBER)
    with pytest.raises(PermissionDenied):
        membership_role_change(actor=second_owner, target=team.owner, role=Role.MEMBER)

    assert role_of(team.owner) == Role.OWNER


def test_the_service_keeps_the_last_owner(team: Team) -> None:
    with pytest.raises(ValidationError, match="only owner"):
        membership_leave(membership=team.owner)
    with pytest.raises(ValidationError, match="only owner"):
        membership_role_change(actor=team.owner, target=team.owner, role=Role.MEMBER)
    with pytest.raises(ValidationError, match="Leave organisation"):
        membership_remove(actor=team.owner, target=team.owner)

    assert role_of(team.owner) == Role.OWNER


def test_leaving_and_removing_delete_only_that_membership(team: Team) -> None:
    membership_leave(membership=team.admin)
    membership_remove(actor=team.owner, target=team.member)

    assert list(Membership.objects.filter(organisation=team.organisation)) == [team.owner]
