"""The audit's registry: how every URL pattern of both URLconfs is probed, and what refusal each probe expects.

A pattern missing here, or an entry whose pattern is gone, fails test_every_url_pattern_is_in_the_registry:
a new page is not live until someone has said who may open it.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.security.support import PUBLIC, TENANT


@dataclass(frozen=True)
class Expect:
    """What a probe must get: one of `statuses`; a redirect's Location starting with `location`; `says` in the page."""

    statuses: frozenset[int]
    location: str | None = None
    says: str | None = None
    label: str = ""


def expect(*statuses: int, location: str | None = None, says: str | None = None, label: str = "") -> Expect:
    return Expect(frozenset(statuses), location, says, label)


LOGIN = expect(302, location="/accounts/login/?next=", label="redirect to log-in")
ADMIN_LOGIN = expect(302, location="/admin/login/?next=", label="redirect to the admin's log-in")
NOT_MEMBER = expect(403, says="You are not a member of", label="403 not a member")
NOT_FOUND = expect(404, label="404")
BAD_TOKEN = expect(400, label="400 invalid token")
FORBIDDEN = expect(403, label="403")
SERVED = expect(200, label="served (public)")
SERVED_OR_ON = expect(200, 302, label="served or sent on (public)")
BAD_LINK = expect(200, 404, label="allauth's invalid-link answer")


@dataclass(frozen=True)
class Route:
    """How one pattern is probed.

    `args`: each path argument's kind (support.ArgValues fills it: A's value for intruders, B's and
    malformed values for A's own member). `methods`: what the view answers; a 405 to any other
    method is a refusal too. `anonymous`: a signed-out visitor. `intruder`: B's owner, signed in on
    A's host (tenant patterns) or on the public host (public patterns). `forged`: A's owner with
    B's ids and malformed ids (only patterns with arguments). `data`: the POST body of every probe.
    """

    anonymous: Expect
    intruder: Expect
    methods: tuple[str, ...] = ("GET", "POST")
    args: Mapping[str, str] = field(default_factory=dict)
    forged: Expect | None = None
    data: Mapping[str, str] = field(default_factory=dict)  # a valid form, so a POST gets past its form to the lookup


def member_page(
    methods: str = "GET POST", forged: Expect | None = None, data: Mapping[str, str] | None = None, **args: str
) -> Route:
    """A page of an organisation's host: members only (MembershipRequiredMiddleware), ids of this schema only."""
    return Route(LOGIN, NOT_MEMBER, tuple(methods.split()), args, forged or (NOT_FOUND if args else None), data or {})


GET, POST, BOTH = "GET", "POST", "GET POST"
# allauth's pages on an organisation's host: the log-in flow is open (OPEN_TENANT_PATHS, or allauth's
# login_not_required views); the account pages need a member like every other page.
TENANT_ACCOUNT_OPEN = {
    "accounts/login/#account_login": Route(SERVED, SERVED_OR_ON),
    "accounts/logout/#account_logout": Route(SERVED_OR_ON, SERVED_OR_ON),
    "accounts/signup/#account_signup": Route(SERVED, SERVED_OR_ON),
    "accounts/inactive/#account_inactive": Route(SERVED, SERVED, ("GET",)),
    "accounts/confirm-email/#account_email_verification_sent": Route(SERVED, SERVED, ("GET",)),
    "accounts/login/code/confirm/#account_confirm_login_code": Route(SERVED_OR_ON, SERVED_OR_ON),
    "accounts/password/reset/#account_reset_password": Route(SERVED, SERVED),
    "accounts/password/reset/done/#account_reset_password_done": Route(SERVED, SERVED, ("GET",)),
    "accounts/password/reset/key/done/#account_reset_password_from_key_done": Route(SERVED, SERVED, ("GET",)),
    # Made-up keys: allauth's own "this link is not valid" answers (a page, or a 404 to a POST).
    r"accounts/^password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/$#account_reset_password_from_key": Route(
        BAD_LINK, BAD_LINK, args={"uidb36": "uidb36", "key": "garbage"}
    ),
    r"accounts/^confirm-email/(?P<key>[-:\w]+)/$#account_confirm_email": Route(
        BAD_LINK, BAD_LINK, args={"key": "garbage"}
    ),
}
TENANT_ACCOUNT_GATED = {
    f"accounts/{path}#{name}": member_page()
    for path, name in [
        ("email/", "account_email"),
        ("password/change/", "account_change_password"),
        ("password/set/", "account_set_password"),
        ("reauthenticate/", "account_reauthenticate"),
        ("reauthenticate/code/", "account_request_reauthentication_code"),
        ("reauthenticate/code/confirm/", "account_confirm_reauthentication_code"),
    ]
}

TENANT_ROUTES: dict[str, Route] = {
    "#dashboard": member_page(),
    # team and settings (memberships and invitations live in the public schema: ids are global)
    "members/#members": member_page(GET),
    "members/invite/#member_invite": member_page(POST),
    "members/leave/#member_leave": member_page(POST),
    "members/<int:membership_id>/role/#member_role": member_page(
        POST, data={"role": "admin"}, membership_id="membership"
    ),
    "members/<int:membership_id>/remove/#member_remove": member_page(POST, membership_id="membership"),
    "members/invitations/<int:invitation_id>/withdraw/#invitation_withdraw": member_page(
        POST, invitation_id="invitation"
    ),
    "settings/#organisation_settings": member_page(),
    "settings/delete/#organisation_delete": member_page(POST),
    # watchlists
    "watchlists/#watchlists:index": member_page(GET),
    "watchlists/new/#watchlists:create": member_page(POST),
    "watchlists/<int:pk>/#watchlists:detail": member_page(GET, pk="watchlist"),
    "watchlists/<int:pk>/rename/#watchlists:rename": member_page(POST, data={"name": "Renamed"}, pk="watchlist"),
    "watchlists/<int:pk>/symbols/#watchlists:symbols_add": member_page(POST, data={"symbols": "MSFT"}, pk="watchlist"),
    "watchlists/<int:pk>/symbols/remove/#watchlists:symbol_remove": member_page(
        POST, data={"symbol": "AAPL"}, pk="watchlist"
    ),
    "watchlists/<int:pk>/symbols/move/#watchlists:symbol_move": member_page(
        POST, data={"symbol": "AAPL", "position": "0"}, pk="watchlist"
    ),
    "watchlists/<int:pk>/export.csv#watchlists:export": member_page(GET, pk="watchlist"),
    "watchlists/<int:pk>/delete/#watchlists:delete": member_page(pk="watchlist"),
    # widgets: the owners' pages
    "widgets/#widgets:index": member_page(GET),
    "widgets/new/#widgets:create": member_page(POST),
    "widgets/<int:pk>/#widgets:detail": member_page(GET, pk="widget"),
    "widgets/<int:pk>/edit/#widgets:edit": member_page(POST, pk="widget"),
    "widgets/<int:pk>/active/#widgets:set_active": member_page(POST, data={"active": "0"}, pk="widget"),
    "widgets/<int:pk>/delete/#widgets:delete": member_page(pk="widget"),
    # widgets: what any web site may load. The script is public; another organisation's widget is a 404 here.
    r"widgets/^(?P<public_id>w_[A-Za-z0-9_-]{16})/embed\.js$#widgets:embed": Route(
        SERVED, SERVED, ("GET",), {"public_id": "public_id"}, NOT_FOUND
    ),
    # A token needs an Origin on the widget's list: these probes send none (test_widget_token_* send some).
    r"widgets/^(?P<public_id>w_[A-Za-z0-9_-]{16})/token/$#widgets:token": Route(
        FORBIDDEN, FORBIDDEN, ("POST", "OPTIONS"), {"public_id": "public_id"}, NOT_FOUND
    ),
    # alerts
    "alerts/#alerts:index": member_page(GET),
    "alerts/new/#alerts:create": member_page(POST),
    "alerts/history/#alerts:history": member_page(GET),
    "alerts/settings/#alerts:settings": member_page(),
    "alerts/settings/rotate/#alerts:rotate": member_page(POST),
    "alerts/<int:pk>/#alerts:detail": member_page(GET, pk="alert"),
    "alerts/<int:pk>/edit/#alerts:edit": member_page(POST, pk="alert"),
    "alerts/<int:pk>/active/#alerts:set_active": member_page(POST, data={"active": "0"}, pk="alert"),
    "alerts/<int:pk>/email/#alerts:email": member_page(POST, data={"chosen": "1"}, pk="alert"),
    "alerts/<int:pk>/delete/#alerts:delete": member_page(pk="alert"),
    # billing (the plan slug is no organisation's data: no forged variant)
    "billing/#billing": member_page(),
    "billing/checkout/<slug:plan_slug>/#billing_checkout": member_page(POST, plan_slug="plan"),
    "billing/start/<slug:plan_slug>/#billing_start": member_page(BOTH, plan_slug="plan"),
    "billing/portal/#billing_portal": member_page(POST),
    "billing/success/#billing_success": member_page(),
    "billing/cancel/#billing_cancel": member_page(),
    "symbols/search/#symbol_search": member_page(GET),
    # The hand-off is how a session reaches this host: open, and B's token (or a forged one) is a 400.
    "handoff/<str:token>/#handoff": Route(BAD_TOKEN, BAD_TOKEN, ("GET",), {"token": "handoff"}, BAD_TOKEN),
    **TENANT_ACCOUNT_OPEN,
    **TENANT_ACCOUNT_GATED,
}

# -- the public host ------------------------------------------------------------------------------
# The admin's model pages, by model: registering another model adds patterns this list lacks.
ADMIN_MODELS = {
    "auth/group": "auth_group",
    "billing/plan": "billing_plan",
    "billing/stripeevent": "billing_stripeevent",
    "tenants/organisation": "tenants_organisation",
    "tenants/membership": "tenants_membership",
    "tenants/invitation": "tenants_invitation",
    "accounts/user": "accounts_user",
    "account/emailaddress": "account_emailaddress",
}
ADMIN_INDEX = expect(302, location="/admin/", label="redirect to the admin's index, then its log-in")
STAFF_ONLY = Route(ADMIN_LOGIN, ADMIN_LOGIN, args={"object_id": "admin_object"})


def admin_model_routes(path: str, name: str) -> dict[str, Route]:
    return {
        f"admin/{path}/#admin:{name}_changelist": STAFF_ONLY,
        f"admin/{path}/add/#admin:{name}_add": STAFF_ONLY,
        f"admin/{path}/<path:object_id>/history/#admin:{name}_history": STAFF_ONLY,
        f"admin/{path}/<path:object_id>/delete/#admin:{name}_delete": STAFF_ONLY,
        f"admin/{path}/<path:object_id>/change/#admin:{name}_change": STAFF_ONLY,
        f"admin/{path}/<path:object_id>/": STAFF_ONLY,  # the admin's redirect to …/change/
    }


# Staff log in through allauth: a visitor is sent to its log-in, a signed-in non-staff user gets a 403.
ADMIN_LOG_IN = Route(expect(302, location="/accounts/login/?next=", label="allauth log-in"), FORBIDDEN)
PUBLIC_ACCOUNT_ROUTES = TENANT_ACCOUNT_OPEN | {
    # On the public host the account pages are the user's own (no organisation's data): signed in, served.
    key: Route(LOGIN, SERVED_OR_ON)
    for key in TENANT_ACCOUNT_GATED
}
PUBLIC_ROUTES: dict[str, Route] = {
    "#landing": Route(SERVED, SERVED),
    "pricing/#pricing": Route(SERVED, SERVED),
    # A webhook without a Stripe signature is refused; the endpoint takes POST only.
    "billing/webhook/#stripe_webhook": Route(expect(400), expect(400), ("POST",)),
    "signup/#signup": Route(SERVED, SERVED_OR_ON),
    "accounts/signup/#account_signup": Route(SERVED, SERVED_OR_ON),
    **PUBLIC_ACCOUNT_ROUTES,
    "organisations/#organisation_list": Route(LOGIN, SERVED),
    # B's owner asking to open A: "not a member" is a 404, and no hand-off token is made.
    "organisations/<slug:slug>/open/#organisation_open": Route(LOGIN, NOT_FOUND, ("GET",), {"slug": "org_slug"}),
    "invitations/<str:token>/#invitation": Route(BAD_TOKEN, BAD_TOKEN, args={"token": "garbage"}),
    "admin/login/": ADMIN_LOG_IN,
    "admin/login/#admin:login": ADMIN_LOG_IN,
    "admin/feed/#admin_feed_status": STAFF_ONLY,
    "admin/#admin:index": STAFF_ONLY,
    "admin/logout/#admin:logout": Route(ADMIN_INDEX, ADMIN_INDEX),  # admin_view sends logout to the index
    "admin/password_change/#admin:password_change": STAFF_ONLY,
    "admin/password_change/done/#admin:password_change_done": STAFF_ONLY,
    "admin/autocomplete/#admin:autocomplete": STAFF_ONLY,
    "admin/jsi18n/#admin:jsi18n": STAFF_ONLY,
    "admin/r/<path:content_type_id>/<path:object_id>/#admin:view_on_site": Route(
        ADMIN_LOGIN, ADMIN_LOGIN, args={"content_type_id": "content_type", "object_id": "admin_object"}
    ),
    "admin/accounts/user/<id>/password/#admin:auth_user_password_change": Route(
        ADMIN_LOGIN, ADMIN_LOGIN, args={"id": "admin_object"}
    ),
    r"admin/^(?P<app_label>auth|billing|tenants|accounts|account)/$#admin:app_list": Route(
        ADMIN_LOGIN, ADMIN_LOGIN, args={"app_label": "app_label"}
    ),
    r"admin/(?P<url>.*)$": Route(ADMIN_LOGIN, ADMIN_LOGIN, args={"url": "garbage"}),
} | {key: route for path, name in ADMIN_MODELS.items() for key, route in admin_model_routes(path, name).items()}

REGISTRY: dict[tuple[str, str], Route] = {(PUBLIC, key): route for key, route in PUBLIC_ROUTES.items()} | {
    (TENANT, key): route for key, route in TENANT_ROUTES.items()
}
