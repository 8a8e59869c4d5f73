"""The team: the members page and its actions (organisation host), the invitation link (public host)."""

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth import login, logout
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from tenants.forms import InvitationForm, InvitationSignupForm, form_add_errors
from tenants.middleware import request_membership
from tenants.models import Invitation, Membership, Role
from tenants.notices import Notice, notice_url
from tenants.roles import invitation_check_allowed, roles_grantable
from tenants.selectors import (
    invitation_get_in_organisation,
    invitation_list_pending,
    member_rows,
    membership_get_in_organisation,
    organisation_owner_count,
    public_url,
    user_exists,
)
from tenants.services.team import (
    InvitationError,
    InvitationNotSentError,
    invitation_accept,
    invitation_create,
    invitation_for_token,
    invitation_refusal,
    invitation_revoke,
    invitation_signup,
    membership_leave,
    membership_remove,
    membership_role_change,
)

# Status of the invitation page for each reason a link cannot be used.
INVITATION_ERROR_STATUS = {
    "invalid": 400,
    "expired": 410,
    "withdrawn": 410,
    "used": 410,
    "wrong_account": 403,
    "already_member": 409,
    "account_exists": 409,
}


def _target(request: HttpRequest, membership_id: int) -> Membership:
    """A member of this organisation, or a 404 (an id of another organisation's member included)."""
    target = membership_get_in_organisation(
        organisation=request_membership(request).organisation, membership_id=membership_id
    )
    if target is None:
        raise Http404("No such member in this organisation.")
    return target


def _members_page(
    request: HttpRequest, *, invite_form: InvitationForm | None = None, status: int = 200
) -> HttpResponse:
    actor = request_membership(request)
    grantable = roles_grantable(actor=actor)
    context = {
        "rows": member_rows(actor=actor),
        "grantable_roles": grantable,
        "is_only_owner": actor.role == Role.OWNER and organisation_owner_count(organisation=actor.organisation) == 1,
        "invitations": invitation_list_pending(organisation=actor.organisation) if actor.is_admin else [],
        "invite_form": (invite_form or InvitationForm(roles=grantable)) if actor.is_admin else None,
    }
    return render(request, "tenants/members.html", context, status=status)


@require_GET
def members(request: HttpRequest) -> HttpResponse:
    """Organisation host: who belongs to the organisation; owners and admins manage them here."""
    return _members_page(request)


@require_POST
def member_invite(request: HttpRequest) -> HttpResponse:
    """Organisation host: invite someone by e-mail (owners and admins)."""
    actor = request_membership(request)
    invitation_check_allowed(actor=actor)
    form = InvitationForm(request.POST, roles=roles_grantable(actor=actor))
    if form.is_valid():
        try:
            invitation, resent = invitation_create(
                actor=actor,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                public_base_url=public_url(request=request, path=""),
            )
        except ValidationError as exc:
            form_add_errors(form, exc)
        except InvitationNotSentError as exc:
            form.add_error(None, exc.message)
            return _members_page(request, invite_form=form, status=503)
        else:
            role = Role(invitation.role).label.lower()
            if resent:
                messages.info(
                    request, f"{invitation.email} was already invited; we sent the invitation again (as {role})."
                )
            else:
                messages.success(request, f"Invitation sent to {invitation.email} (as {role}).")
            return redirect("members")
    return _members_page(request, invite_form=form, status=400)


@require_POST
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    """Organisation host: give a member another role."""
    target = _target(request, membership_id)

    def change() -> str:
        role = request.POST.get("role", "")
        changed = membership_role_change(actor=request_membership(request), target=target, role=role)
        return f"{changed.user.email}’s role is now {changed.get_role_display()}."

    return _on_members_page(request, change)


@require_POST
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    """Organisation host: take someone out of the organisation."""
    target = _target(request, membership_id)

    def remove() -> str:
        membership_remove(actor=request_membership(request), target=target)
        return f"{target.user.email} was removed from {target.organisation.name}."

    return _on_members_page(request, remove)


@require_POST
def member_leave(request: HttpRequest) -> HttpResponse:
    """Organisation host: leave the organisation, then land on "Your organisations" on the public host."""
    membership = request_membership(request)
    try:
        membership_leave(membership=membership)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("members")
    # This host's session has nothing left to open.
    logout(request)
    return HttpResponseRedirect(
        notice_url(url=public_url(request=request, path="/organisations/"), notice=Notice.ORGANISATION_LEFT)
    )


@require_POST
def invitation_withdraw(request: HttpRequest, invitation_id: int) -> HttpResponse:
    """Organisation host: withdraw a pending invitation; its link stops working."""
    actor = request_membership(request)
    invitation = invitation_get_in_organisation(organisation=actor.organisation, invitation_id=invitation_id)
    if invitation is None:
        raise Http404("No such invitation in this organisation.")

    def withdraw() -> str:
        invitation_revoke(actor=actor, invitation=invitation)
        return f"The invitation to {invitation.email} was withdrawn."

    return _on_members_page(request, withdraw)


def _on_members_page(request: HttpRequest, action: Callable[[], str]) -> HttpResponse:
    """Run a team action and go back to the members page, with its message or its refusal."""
    try:
        message = action()
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, message)
    return redirect("members")


@never_cache
@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Public host: what the invitation offers (GET) and accepting it (POST), signed in or signing up."""
    try:
        pending = invitation_for_token(token=token)
    except InvitationError as exc:
        return _invitation_refused(request, exc)
    user = request.user if isinstance(request.user, User) else None
    form = InvitationSignupForm(email=pending.email)
    if request.method == "POST":
        try:
            if user is not None:
                membership = invitation_accept(token=token, user=user)
            else:
                form = InvitationSignupForm(request.POST, email=pending.email)
                if not form.is_valid():
                    return _invitation_page(request, pending=pending, form=form, status=400)
                membership = invitation_signup(token=token, password=form.cleaned_data["password"])
                login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
        except InvitationError as exc:
            return _invitation_refused(request, exc)
        except ValidationError as exc:
            form_add_errors(form, exc)
            return _invitation_page(request, pending=pending, form=form, status=400)
        return redirect("organisation_open", membership.organisation.slug)

    refusal = invitation_refusal(invitation=pending, user=user) if user is not None else None
    if refusal is not None and refusal.code == "already_member":
        return _invitation_refused(request, refusal)
    return _invitation_page(request, pending=pending, form=form, refusal=refusal)


def _invitation_page(
    request: HttpRequest,
    *,
    pending: Invitation,
    form: InvitationSignupForm,
    refusal: InvitationError | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "invitation": pending,
        "form": form,
        "refusal": refusal,
        "account_exists": user_exists(email=pending.email),
    }
    return render(request, "tenants/invitation.html", context, status=status)


def _invitation_refused(request: HttpRequest, error: InvitationError) -> HttpResponse:
    return render(
        request, "tenants/invitation_invalid.html", {"error": error}, status=INVITATION_ERROR_STATUS[error.code]
    )
