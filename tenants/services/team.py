"""Writes for an organisation's team: invitations (signed, single-use links), roles, removal, leaving.

Every change runs inside a transaction that first locks the organisation's row, so two owners
demoting each other at the same moment cannot leave an organisation without an owner.
"""

import logging
import smtplib

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import BadHeaderError, send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.models import User
from accounts.services import user_create
from accounts.validators import email_clean
from streaming.services import member_notify_removed
from tenants.models import Invitation, Membership, Organisation, Role
from tenants.roles import admin_required, invitation_check_allowed, membership_can_manage, roles_grantable
from tenants.validators import parse_id

logger = logging.getLogger(__name__)

INVITATION_SALT = "tenants.invitation"
INVITATION_MAX_AGE_SECONDS = 7 * 24 * 60 * 60


class InvitationError(Exception):
    """Why an invitation link cannot be used now; `title` and `message` say so to the person holding it."""

    TITLES = {
        "invalid": "This invitation link is not valid",
        "expired": "This invitation has expired",
        "withdrawn": "This invitation is no longer valid",
        "used": "This invitation was already used",
        "wrong_account": "This invitation is for someone else",
        "already_member": "You are already a member",
        "account_exists": "You already have an account",
    }

    def __init__(self, code: str, message: str, *, invitation: Invitation | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.title = self.TITLES[code]
        self.message = message
        self.invitation = invitation


class InvitationNotSentError(Exception):
    """The invitation e-mail could not be sent, so nothing was saved; `message` tells the inviter."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------------------------------------
# Invitations
# ---------------------------------------------------------------------------------------------
def invitation_create(*, actor: Membership, email: str, role: str, public_base_url: str) -> tuple[Invitation, bool]:
    """Invite `email` to the actor's organisation as `role` and e-mail them the link, all or nothing.

    Inviting an address that already has a pending invitation updates its role and sends the link
    again; the second value says whether that happened. Raises PermissionDenied when the actor may
    not invite (as that role), ValidationError (keyed "email") for a bad address or a member, and
    InvitationNotSentError when the e-mail cannot be sent (nothing is saved or changed then).
    """
    organisation = actor.organisation
    invitation_check_allowed(actor=actor)
    grantable = roles_grantable(actor=actor)
    if role not in grantable:
        raise PermissionDenied("Only owners can invite someone as an owner.")
    email = email_clean(email)

    with transaction.atomic():
        _organisation_lock(organisation)
        if Membership.objects.filter(organisation=organisation, user__email__iexact=email).exists():
            raise ValidationError({"email": f"{email} is already a member of {organisation.name}."})
        invitation = (
            Invitation.objects.select_for_update()
            .filter(organisation=organisation, email__iexact=email, accepted_at__isnull=True)
            .first()
        )
        resent = invitation is not None
        if invitation is None:
            invitation = Invitation.objects.create(
                organisation=organisation, email=email, role=role, invited_by=actor.user
            )
        else:
            if invitation.role not in grantable:
                raise PermissionDenied("Only owners can change an invitation to join as an owner.")
            invitation.role = role
            invitation.invited_by = actor.user
            invitation.save(update_fields=["role", "invited_by"])
        link = public_base_url.rstrip("/") + reverse(
            "invitation", urlconf=settings.PUBLIC_SCHEMA_URLCONF, args=[invitation_token_create(invitation=invitation)]
        )
        # The e-mail is the invitation, so it is sent inside the transaction, not after commit: a
        # failure rolls the row back instead of leaving an invitation that looks sent and was not.
        # The price: this organisation's row stays locked while the SMTP server answers, and a
        # commit failing after the send leaves a link that says "withdrawn".
        try:
            _invitation_email_send(invitation=invitation, link=link)
        except (smtplib.SMTPException, OSError, BadHeaderError) as exc:
            logger.exception("the invitation e-mail to %s could not be sent", email)
            raise InvitationNotSentError(
                f"We could not send the invitation e-mail to {email} just now, so no invitation was saved or "
                "changed. Please try again in a few minutes."
            ) from exc
    logger.info("%s invited %s to %s as %s", actor.user, email, organisation.slug, role)
    return invitation, resent


def invitation_revoke(*, actor: Membership, invitation: Invitation) -> None:
    """Withdraw a pending invitation: its link stops working."""
    if invitation.organisation_id != actor.organisation_id:
        raise Invitation.DoesNotExist("No such invitation in this organisation.")
    admin_required(actor=actor, action=f"withdraw invitations to {actor.organisation.name}")
    if invitation.role not in roles_grantable(actor=actor):
        raise PermissionDenied("Only owners can withdraw an invitation to join as an owner.")
    if not invitation.is_pending:
        raise ValidationError(f"{invitation.email} has already accepted this invitation.")
    invitation.delete()


def invitation_token_create(*, invitation: Invitation) -> str:
    """The signed token of an invitation link: the invitation and its nonce; the signature dates it."""
    return signing.dumps({"i": invitation.pk, "n": invitation.token_nonce}, salt=INVITATION_SALT)


def invitation_for_token(*, token: str, lock: bool = False) -> Invitation:
    """The pending invitation a link names, or InvitationError saying why it cannot be used."""
    invalid = InvitationError(
        "invalid", "This invitation link is not valid. Check that you copied all of it from the e-mail."
    )
    try:
        payload = signing.loads(token, salt=INVITATION_SALT, max_age=INVITATION_MAX_AGE_SECONDS)
    except signing.SignatureExpired as exc:
        raise InvitationError(
            "expired",
            "This invitation has expired: links work for 7 days. Ask an admin of the organisation to invite you again.",
        ) from exc
    except signing.BadSignature as exc:
        raise invalid from exc
    # A valid signature proves only that the key signed it; the key once leaked, so the nonce decides.
    invitation_id = parse_id(payload.get("i")) if isinstance(payload, dict) else None
    nonce = payload.get("n") if isinstance(payload, dict) else None
    if invitation_id is None or not isinstance(nonce, str) or not nonce:
        raise invalid
    invitations = Invitation.objects.select_related("organisation", "invited_by")
    if lock:
        invitations = invitations.select_for_update(of=("self",))
    invitation = invitations.filter(pk=invitation_id).first()
    if invitation is not None and not constant_time_compare(nonce, invitation.token_nonce):
        raise invalid
    if invitation is None:
        raise InvitationError(
            "withdrawn",
            "This invitation was withdrawn, or its organisation no longer exists. "
            "Ask an admin of the organisation for a new one.",
        )
    if not invitation.is_pending:
        raise InvitationError(
            "used",
            f"This invitation was already used. If you accepted it, open {invitation.organisation.name} "
            "from your organisations.",
            invitation=invitation,
        )
    return invitation


def invitation_accept(*, token: str, user: User) -> Membership:
    """Make `user` a member through the invitation the link names; the link is then used up.

    Raises InvitationError when the link cannot be used, the user is not the invited address, or
    already belongs to the organisation; nothing changes then.
    """
    with transaction.atomic():
        invitation = invitation_for_token(token=token, lock=True)
        refusal = invitation_refusal(invitation=invitation, user=user)
        if refusal is not None:
            raise refusal
        organisation = invitation.organisation
        membership = Membership.objects.create(organisation=organisation, user=user, role=invitation.role)
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
    logger.info("%s joined %s as %s", user, organisation.slug, membership.role)
    return membership


def invitation_refusal(*, invitation: Invitation, user: User) -> InvitationError | None:
    """Why `user` cannot accept this pending invitation (another address, already a member), or None."""
    if user.email.lower() != invitation.email.lower():
        return InvitationError(
            "wrong_account",
            f"This invitation is for {invitation.email}, but you are logged in as {user.email}. "
            f"Log out, then log in as {invitation.email} (or create that account) to accept it.",
            invitation=invitation,
        )
    organisation = invitation.organisation
    if Membership.objects.filter(organisation=organisation, user=user).exists():
        return InvitationError(
            "already_member", f"You are already a member of {organisation.name}.", invitation=invitation
        )
    return None


def invitation_signup(*, token: str, password: str) -> Membership:
    """Create the invited address's account with `password` and accept the invitation, all or nothing.

    Raises InvitationError (as invitation_accept, or "account_exists"), or ValidationError keyed
    "password" for a password the validators refuse.
    """
    with transaction.atomic():
        invitation = invitation_for_token(token=token, lock=True)
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise InvitationError(
                "account_exists",
                f"An account with {invitation.email} already exists: log in to accept the invitation.",
                invitation=invitation,
            )
        user = user_create(email=invitation.email, password=password)
        return invitation_accept(token=token, user=user)


def _invitation_email_send(*, invitation: Invitation, link: str) -> None:
    context = {
        "invitation": invitation,
        "organisation": invitation.organisation,
        "inviter": invitation.invited_by,
        "link": link,
        "max_age_days": INVITATION_MAX_AGE_SECONDS // 86400,
    }
    # One line whatever the name holds (names saved before line breaks were refused): a line break
    # in a header is an injection, which Django refuses with BadHeaderError.
    subject = " ".join(render_to_string("tenants/email/invitation_subject.txt", context).split())
    body = render_to_string("tenants/email/invitation_body.txt", context)
    send_mail(subject, body, None, [invitation.email])


# ---------------------------------------------------------------------------------------------
# Memberships
# ---------------------------------------------------------------------------------------------
def membership_role_change(*, actor: Membership, target: Membership, role: str) -> Membership:
    """Give `target` a new role. Owners manage everyone; admins everyone but owners; the last owner stays."""
    if role not in Role.values:
        raise ValidationError(f"“{role}” is not a role; choose owner, admin or member.")
    with transaction.atomic():
        actor, target = _team_lock_to_manage(
            actor=actor, target=target, action="change roles in", refusal="Only owners can change an owner's role."
        )
        organisation = actor.organisation
        if role not in roles_grantable(actor=actor):
            raise PermissionDenied("Only owners can make someone an owner.")
        if target.role == role:
            return target
        if target.role == Role.OWNER:
            _last_owner_check(
                target,
                f"{target.user.email} is the only owner of {organisation.name}. Make someone else an owner first.",
            )
        target.role = role
        target.save(update_fields=["role"])
    logger.info("%s made %s %s in %s", actor.user, target.user, role, organisation.slug)
    return target


def membership_remove(*, actor: Membership, target: Membership) -> None:
    """Take `target` out of the organisation (owners and admins; admins cannot remove owners)."""
    if target.pk == actor.pk:
        raise ValidationError("To remove yourself, use “Leave organisation”.")
    with transaction.atomic():
        actor, target = _team_lock_to_manage(
            actor=actor, target=target, action="remove members of", refusal="Only owners can remove an owner."
        )
        organisation = actor.organisation
        target.delete()
        member_notify_removed(schema_name=organisation.schema_name, user_id=target.user_id)
    logger.info("%s removed %s from %s", actor.user, target.user, organisation.slug)


def membership_leave(*, membership: Membership) -> None:
    """The member leaves the organisation; its last owner cannot."""
    with transaction.atomic():
        membership, _ = _team_lock(actor=membership, target=membership)
        organisation = membership.organisation
        if membership.role == Role.OWNER:
            _last_owner_check(
                membership,
                f"You are the only owner of {organisation.name}. Make another member an owner before you "
                "leave, or delete the organisation in Settings.",
            )
        membership.delete()
        member_notify_removed(schema_name=organisation.schema_name, user_id=membership.user_id)
    logger.info("%s left %s", membership.user, organisation.slug)


def _organisation_lock(organisation: Organisation) -> None:
    list(Organisation.objects.select_for_update().filter(pk=organisation.pk).values_list("pk", flat=True))


def _team_lock(*, actor: Membership, target: Membership) -> tuple[Membership, Membership]:
    """Lock the organisation, then re-read both memberships: roles may have changed since the request began."""
    if target.organisation_id != actor.organisation_id:
        raise Membership.DoesNotExist(f"{target.user.email} is not a member of {actor.organisation.name}.")
    _organisation_lock(actor.organisation)
    current = {
        m.pk: m
        for m in Membership.objects.select_related("user", "organisation").filter(
            pk__in=[actor.pk, target.pk], organisation_id=actor.organisation_id
        )
    }
    if actor.pk not in current:
        raise PermissionDenied(f"You are no longer a member of {actor.organisation.name}.")
    if target.pk not in current:
        raise ValidationError(f"{target.user.email} is no longer a member of {actor.organisation.name}.")
    return current[actor.pk], current[target.pk]


def _team_lock_to_manage(
    *, actor: Membership, target: Membership, action: str, refusal: str
) -> tuple[Membership, Membership]:
    """Lock the team; refuse unless the actor is an admin (else `action`) who may manage the target (else `refusal`)."""
    actor, target = _team_lock(actor=actor, target=target)
    admin_required(actor=actor, action=f"{action} {actor.organisation.name}")
    if not membership_can_manage(actor=actor, target=target):
        raise PermissionDenied(refusal)
    return actor, target


def _last_owner_check(owner: Membership, message: str) -> None:
    others = Membership.objects.filter(organisation_id=owner.organisation_id, role=Role.OWNER).exclude(pk=owner.pk)
    if not others.exists():
        raise ValidationError(message)
