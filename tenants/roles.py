"""Who may do what to whom in an organisation: the one place the role rules live (no queries)."""

from django.core.exceptions import PermissionDenied

from .models import Membership, Role

# The roles each role may hand out (invite as, or change someone to). Owners hand out every role;
# admins manage everyone but owners; members manage nobody.
GRANTABLE_ROLES: dict[str, tuple[Role, ...]] = {
    Role.OWNER: (Role.OWNER, Role.ADMIN, Role.MEMBER),
    Role.ADMIN: (Role.ADMIN, Role.MEMBER),
    Role.MEMBER: (),
}


def roles_grantable(*, actor: Membership) -> tuple[Role, ...]:
    """The roles `actor` may invite people as, or give to a member they manage."""
    return GRANTABLE_ROLES.get(actor.role, ())


def membership_can_manage(*, actor: Membership, target: Membership) -> bool:
    """Whether `actor` may change `target`'s role or remove them: only someone whose role they could grant."""
    return actor.organisation_id == target.organisation_id and target.role in roles_grantable(actor=actor)


def admin_required(*, actor: Membership, action: str) -> None:
    """Refuse (PermissionDenied) unless the actor is an owner or admin; `action` says what was tried."""
    if not actor.is_admin:
        raise PermissionDenied(f"Only owners and admins can {action}.")


def invitation_check_allowed(*, actor: Membership) -> None:
    """Refuse (PermissionDenied) unless the actor may invite people at all."""
    admin_required(actor=actor, action=f"invite people to {actor.organisation.name}")


def organisation_settings_check_allowed(*, actor: Membership) -> None:
    """Refuse (PermissionDenied) unless the actor may change the organisation's settings."""
    admin_required(actor=actor, action=f"change the settings of {actor.organisation.name}")
