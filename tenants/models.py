"""Organisations (one PostgreSQL schema each), their domains and their members: public schema."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django_tenants.models import DomainMixin, TenantMixin

from billing.models import Plan


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    TRIALING = "trialing", "Trialing"
    PAST_DUE = "past_due", "Past due"
    UNPAID = "unpaid", "Unpaid"
    CANCELED = "canceled", "Canceled"


class Organisation(TenantMixin):
    """A customer: its own schema, subdomain, plan and members."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=40, unique=True)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="organisations")
    subscription_status = models.CharField(
        max_length=20, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE
    )
    payment_grace_until = models.DateTimeField(
        null=True, blank=True, help_text="Streams keep working until then while a payment is overdue."
    )
    stripe_customer_id = models.CharField(max_length=120, blank=True, db_index=True)
    stripe_subscription_id = models.CharField(max_length=120, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    auto_create_schema = True
    auto_drop_schema = True

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def create_schema(self, check_if_exists: bool = False, sync_schema: bool = True, verbosity: int = 1) -> bool | None:
        """Clone from the template through a clone function installed once; anything else as django-tenants does.

        django-tenants drops and re-creates its clone functions and enum types on every clone (40
        dead pg_enum and 33 dead pg_proc TOAST rows each); tenants.schema_template says what else
        made one clone take minutes after ~400 organisations.
        """
        from .schema_template import tenant_schema_clone

        if sync_schema and tenant_schema_clone(tenant=self, check_if_exists=check_if_exists, verbosity=verbosity):
            return True
        return super().create_schema(check_if_exists=check_if_exists, sync_schema=sync_schema, verbosity=verbosity)


class SchemaScript(models.Model):
    """The template schema as SQL (pg_dump's, its name a placeholder) for one set of applied migrations.

    New organisations' schemas are made by running it (tenants.schema_script): the same work at any
    number of organisations, where clone_schema's catalog reads grow with them.
    """

    template = models.CharField(max_length=63)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the migrations applied to the template.")
    script = models.TextField()
    captured = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["template", "fingerprint"], name="schema_script_unique")]

    def __str__(self) -> str:
        return f"{self.template} {self.fingerprint[:12]}"


class Domain(DomainMixin):
    """A host name that serves one organisation (its subdomain, or a custom domain)."""

    class Meta:
        ordering = ("domain",)

    def __str__(self) -> str:
        return self.domain


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class Membership(models.Model):
    """A user's role in one organisation; every tenant request and websocket checks it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("organisation__name", "user__email")
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation"], name="membership_unique_user_organisation"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organisation} ({self.role})"

    @property
    def is_admin(self) -> bool:
        """Owners and admins manage members, watchlists, widgets and billing."""
        return self.role in (Role.OWNER, Role.ADMIN)


def invitation_token_nonce() -> str:
    """A new random secret for an invitation's link (32 URL-safe characters, 192 bits)."""
    return secrets.token_urlsafe(24)


class Invitation(models.Model):
    """An e-mail invitation to join an organisation; pending until accepted, then kept as a record."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField("e-mail address")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    # Signed into the link: the signing key alone cannot forge a link without it (the key leaked once).
    token_nonce = models.CharField(max_length=64, default=invitation_token_nonce, editable=False)

    class Meta:
        ordering = ("organisation__name", "email")
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "organisation",
                condition=Q(accepted_at__isnull=True),
                name="invitation_unique_pending_email",
                violation_error_message="This address already has a pending invitation.",
            ),
            models.CheckConstraint(
                # S106: a nonce's shape, not a password.
                condition=Q(token_nonce__regex=r"^[A-Za-z0-9_-]{32,64}$"),  # noqa: S106
                name="invitation_token_nonce_random",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.organisation} ({self.role})"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None
