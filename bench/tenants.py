"""The bench's organisations in the bench database: a private plan, owners, sessions; all removed after.

Made through the product's own services (tenants.services, widgets.services), as a sign-up and the
widget pages would make them, so the servers under test run their full connect step (tenant by
host, session or widget token, membership, plan limits).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field


@dataclass
class Organisations:
    """What the bench created, to connect with (slug, session) and to remove afterwards."""

    slugs: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    organisation_ids: list[int] = field(default_factory=list)
    user_ids: list[int] = field(default_factory=list)
    plan_id: int | None = None
    other_plan_ids: list[int] = field(default_factory=list)  # the widget organisation's


@dataclass(frozen=True)
class WidgetTenant:
    """The widget scenario's organisation (apart from the streams' ones) and its one widget."""

    slug: str
    schema_name: str
    organisation_id: int
    public_id: str
    symbols: tuple[str, ...]
    origin: str  # the one site the widget is allowed on
    max_widget_viewers: int


def organisations_create(created: Organisations, *, count: int, run_id: str, max_streams: int) -> None:
    """`count` organisations on one realtime plan with room for every stream the bench opens."""
    from accounts.services import owner_get_or_create
    from accounts.sessions import session_create
    from billing.models import Plan
    from tenants.services.organisations import organisation_create

    plan = Plan.objects.create(name=f"Bench {run_id}", slug=f"bench-{run_id}", max_symbols_per_stream=30,
                               max_streams=max_streams, realtime=True, delay_minutes=0, is_public=False)  # fmt: skip
    created.plan_id = plan.pk
    password = secrets.token_urlsafe(24)
    for index in range(count):
        slug = f"bench{run_id}o{index}"
        owner = owner_get_or_create(email=f"owner@{slug}.example", password=password)
        created.user_ids.append(owner.pk)
        organisation = organisation_create(name=f"Bench {run_id} #{index}", slug=slug, owner=owner, plan=plan)
        created.organisation_ids.append(organisation.pk)
        created.slugs.append(slug)
        created.sessions.append(session_create(owner))


def widget_tenant_create(
    created: Organisations, *, run_id: str, symbols: list[str], viewers: int, origin: str
) -> WidgetTenant:
    """One organisation on a private plan with room for `viewers` widget viewers (and no streams), and
    one widget of `symbols` allowed on `origin`, made by widgets.services as the widget pages make it."""
    from accounts.services import owner_get_or_create
    from billing.models import Plan
    from tenants.db import activate_public_schema, activate_schema
    from tenants.services.organisations import organisation_create
    from widgets.services import WidgetSpec, widget_create

    plan = Plan.objects.create(name=f"Bench {run_id} widgets", slug=f"bench-{run_id}-widgets",
                               max_symbols_per_stream=max(30, len(symbols)), max_streams=0, max_widgets=1,
                               max_widget_viewers=viewers + 10, realtime=True, delay_minutes=0,
                               is_public=False)  # fmt: skip
    created.other_plan_ids.append(plan.pk)
    slug = f"bench{run_id}widgets"
    owner = owner_get_or_create(email=f"owner@{slug}.example", password=secrets.token_urlsafe(24))
    created.user_ids.append(owner.pk)
    organisation = organisation_create(name=f"Bench {run_id} widgets", slug=slug, owner=owner, plan=plan)
    created.organisation_ids.append(organisation.pk)
    spec = WidgetSpec(name="Bench widget", symbols=tuple(symbols), allowed_origins=(origin,))
    activate_schema(organisation.schema_name)
    try:
        widget = widget_create(organisation=organisation, spec=spec, created_by_id=owner.pk)
    finally:
        activate_public_schema()
    return WidgetTenant(slug, organisation.schema_name, organisation.pk, widget.public_id, tuple(widget.symbols),
                        origin, plan.max_widget_viewers)  # fmt: skip


def organisations_remove(created: Organisations) -> None:
    """Drop what `organisations_create` made (schemas, domains, memberships, owners, sessions, plan)."""
    from django.contrib.sessions.models import Session

    from accounts.models import User
    from billing.models import Plan
    from tenants.models import Organisation

    for organisation in Organisation.objects.filter(pk__in=created.organisation_ids):
        organisation.delete()  # drops its schema
    Session.objects.filter(session_key__in=created.sessions).delete()
    User.objects.filter(pk__in=created.user_ids).delete()
    plans = [*([created.plan_id] if created.plan_id is not None else []), *created.other_plan_ids]
    Plan.objects.filter(pk__in=plans).delete()


def directory_symbols(count: int) -> list[str]:
    """The first `count` symbols of the product's symbol directory (every system streams these)."""
    from symbols.models import Symbol

    return list(Symbol.objects.order_by("symbol").values_list("symbol", flat=True)[:count])
