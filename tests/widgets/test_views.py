"""Widget pages (owners and admins), the public script and the token endpoint's CORS rules."""

import json
from collections.abc import Callable

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from accounts.models import User
from streaming.state import LeaseKind, stream_state
from tenants.models import Organisation, Role
from tests.conftest import host_client
from tests.watchlists.conftest import inside, signed_in
from widgets.leases import viewer_lease_prefix
from widgets.models import Widget
from widgets.tokens import widget_token_problem

from .conftest import SITE

pytestmark = pytest.mark.django_db

FORM = {"name": "Homepage", "kind": "ticker_tape", "theme": "dark", "symbols": "aapl, msft", "watchlist": "",
        "allowed_origins": "https://www.example.com\nhttps://shop.example.com:8443"}  # fmt: skip


def owner_client(organisation: Organisation) -> Client:
    return signed_in(organisation, organisation.memberships.get(role=Role.OWNER).user)


def test_an_owner_creates_a_widget_and_sees_its_snippet(pro_org: Organisation) -> None:
    client = owner_client(pro_org)
    response = client.post("/widgets/new/", FORM)
    assert response.status_code == 302
    with inside(pro_org):
        widget = Widget.objects.get()
    assert widget.allowed_origins == ["https://www.example.com", "https://shop.example.com:8443"]
    page = client.get(response["Location"]).content.decode()
    assert f'data-tickerdeck-widget="{widget.public_id}"' in page
    # The snippet is shown as text (escaped), not rendered as a second copy of the widget.
    assert f'<pre class="snippet" id="snippet">&lt;div data-tickerdeck-widget=&quot;{widget.public_id}&quot;' in page
    assert f"http://initech.localhost/widgets/{widget.public_id}/embed.js&quot; async&gt;" in page
    assert page.count("<div data-tickerdeck-widget=") == 1  # the preview
    assert '<span id="widget-viewers">0</span> viewers now' in page


def test_the_widget_page_names_the_exact_csp_entries_with_the_websocket_form(
    pro_org: Organisation, make_widget: Callable[..., Widget]
) -> None:
    widget = make_widget(pro_org)
    page = owner_client(pro_org).get(f"/widgets/{widget.pk}/").content.decode()
    assert (
        "<code>script-src http://initech.localhost; connect-src http://initech.localhost ws://initech.localhost</code>"
        in page
    )
    secure = owner_client(pro_org).get(f"/widgets/{widget.pk}/", secure=True).content.decode()
    assert "connect-src https://initech.localhost wss://initech.localhost</code>" in secure


def test_a_refused_create_keeps_the_form_and_says_why(free_org: Organisation) -> None:
    response = owner_client(free_org).post("/widgets/new/", FORM)
    assert response.status_code == 400
    assert "the Free plan allows no widgets" in response.content.decode()


def test_members_cannot_manage_widgets(
    pro_org: Organisation, make_user: Callable[..., User], make_widget: Callable[..., Widget]
) -> None:
    widget = make_widget(pro_org)
    member = make_user("member@initech.example")
    pro_org.memberships.create(user=member, role=Role.MEMBER)
    client = signed_in(pro_org, member)
    assert client.get("/widgets/").status_code == 403
    assert client.post("/widgets/new/", FORM).status_code == 403
    assert client.post(f"/widgets/{widget.pk}/active/", {"active": "0"}).status_code == 403
    with inside(pro_org):
        assert Widget.objects.get().active


def test_another_organisation_widget_is_a_404(
    pro_org: Organisation, make_organisation: Callable[..., Organisation], make_widget: Callable[..., Widget]
) -> None:
    widget = make_widget(pro_org)
    other = make_organisation("umbrella", plan="pro")
    client = owner_client(other)
    assert client.get(f"/widgets/{widget.pk}/").status_code == 404
    assert client.post(f"/widgets/{widget.pk}/active/", {"active": "0"}).status_code == 404
    assert (
        host_client("umbrella.localhost").post(f"/widgets/{widget.public_id}/token/", HTTP_ORIGIN=SITE).status_code
        == 404
    )


def test_revoke_and_restore(pro_org: Organisation, make_widget: Callable[..., Widget]) -> None:
    widget = make_widget(pro_org)
    client = owner_client(pro_org)
    client.post(f"/widgets/{widget.pk}/active/", {"active": "0"})
    widget_page = client.get(f"/widgets/{widget.pk}/").content.decode()
    assert "Revoked" in widget_page
    assert client.post(f"/widgets/{widget.pk}/active/", {"active": "maybe"}).status_code == 302
    client.post(f"/widgets/{widget.pk}/active/", {"active": "1"})
    with inside(pro_org):
        assert Widget.objects.get().active


# -- the public script -------------------------------------------------------------------------------
def test_the_script_is_public_cacheable_and_the_same_for_every_widget(
    pro_org: Organisation, make_widget: Callable[..., Widget]
) -> None:
    widget = make_widget(pro_org)
    anonymous = host_client("initech.localhost")
    response = anonymous.get(f"/widgets/{widget.public_id}/embed.js", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Content-Encoding"] == "gzip"
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert "max-age=300" in response["Cache-Control"]
    again = anonymous.get(f"/widgets/{widget.public_id}/embed.js", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    assert anonymous.get("/widgets/w_AAAAAAAAAAAAAAAA/embed.js").status_code == 404


# -- tokens --------------------------------------------------------------------------------------------
def test_an_allowed_origin_gets_a_token_with_cors_headers(
    pro_org: Organisation, make_widget: Callable[..., Widget]
) -> None:
    widget = make_widget(pro_org)
    response = host_client("initech.localhost").post(f"/widgets/{widget.public_id}/token/", HTTP_ORIGIN=SITE)
    assert response.status_code == 200
    body = json.loads(response.content)
    assert set(body) == {"token", "expires_in"}
    assert body["expires_in"] == 300
    assert response["Access-Control-Allow-Origin"] == SITE
    assert "Origin" in response["Vary"]
    assert response["Cache-Control"] == "no-store"
    problem = widget_token_problem(
        body["token"], schema_name=pro_org.schema_name, public_id=widget.public_id, origin=SITE
    )
    assert problem is None


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "", "https://www.example.com.evil.example"])
def test_any_other_origin_gets_403_and_no_cors_header(
    pro_org: Organisation, make_widget: Callable[..., Widget], origin: str
) -> None:
    widget = make_widget(pro_org)
    headers = {"Origin": origin} if origin else {}
    response = host_client("initech.localhost").post(f"/widgets/{widget.public_id}/token/", headers=headers)
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    assert json.loads(response.content)["error"] == "forbidden"


def test_a_revoked_widget_gets_no_token(pro_org: Organisation, make_widget: Callable[..., Widget]) -> None:
    widget = make_widget(pro_org)
    owner_client(pro_org).post(f"/widgets/{widget.pk}/active/", {"active": "0"})
    response = host_client("initech.localhost").post(f"/widgets/{widget.public_id}/token/", HTTP_ORIGIN=SITE)
    assert response.status_code == 403
    assert "turned off" in json.loads(response.content)["message"]
    # A site on the widget's list may read the refusal (its embed script then stops for good) ...
    assert response["Access-Control-Allow-Origin"] == SITE
    # ... a page of another site cannot read it (the browser keeps it from the script).
    elsewhere = host_client("initech.localhost").post(
        f"/widgets/{widget.public_id}/token/", HTTP_ORIGIN="https://evil.example"
    )
    assert elsewhere.status_code == 403
    assert "Access-Control-Allow-Origin" not in elsewhere


def test_the_organisation_own_pages_get_a_token_for_the_preview(
    pro_org: Organisation, make_widget: Callable[..., Widget]
) -> None:
    widget = make_widget(pro_org)
    response = host_client("initech.localhost").post(
        f"/widgets/{widget.public_id}/token/", HTTP_ORIGIN="http://initech.localhost"
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "http://initech.localhost"


def test_a_preflight_is_answered_for_allowed_origins_only(
    pro_org: Organisation, make_widget: Callable[..., Widget]
) -> None:
    widget = make_widget(pro_org)
    client = host_client("initech.localhost")
    allowed = client.options(f"/widgets/{widget.public_id}/token/", HTTP_ORIGIN=SITE)
    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == SITE
    refused = client.options(f"/widgets/{widget.public_id}/token/", HTTP_ORIGIN="https://evil.example")
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused


def test_a_token_is_not_given_by_get(pro_org: Organisation, make_widget: Callable[..., Widget]) -> None:
    widget = make_widget(pro_org)
    assert (
        host_client("initech.localhost").get(f"/widgets/{widget.public_id}/token/", HTTP_ORIGIN=SITE).status_code == 405
    )


def test_other_pages_of_the_host_still_need_a_member(pro_org: Organisation) -> None:
    anonymous = host_client("initech.localhost")
    assert anonymous.get("/widgets/").status_code == 302
    assert anonymous.get("/widgets/w_AAAAAAAAAAAAAAAA/").status_code == 302


def test_the_widget_pages_count_viewers_per_widget_and_in_total(
    pro_org: Organisation, make_widget: Callable[..., Widget]
) -> None:
    first, second = make_widget(pro_org, "First"), make_widget(pro_org, "Second")
    leases = [viewer_lease_prefix(first.pk) + f"p:{n}" for n in range(2)] + [viewer_lease_prefix(second.pk) + "p:9"]
    async_to_sync(take)(pro_org.schema_name, leases)
    try:
        client = owner_client(pro_org)
        index = client.get("/widgets/").content.decode()
        assert '<span id="viewers-total">3</span> of 200 viewers now' in index
        assert f'<td data-viewers="{first.public_id}">2</td>' in index
        assert f'<td data-viewers="{second.public_id}">1</td>' in index
        detail = client.get(f"/widgets/{first.pk}/").content.decode()
        assert '<span id="widget-viewers">2</span> viewers now · 3 of 200' in detail
        assert "Widget viewers now" in client.get("/billing/").content.decode()
    finally:
        async_to_sync(give_back)(pro_org.schema_name, leases)


async def take(schema: str, leases: list[str]) -> None:
    for lease_id in leases:
        assert await stream_state().lease_acquire(LeaseKind.WIDGET, schema, lease_id, 200)


async def give_back(schema: str, leases: list[str]) -> None:
    for lease_id in leases:
        await stream_state().lease_release(LeaseKind.WIDGET, schema, lease_id)


def test_counting_viewers_and_streams_makes_no_redis_client_per_page_view(pro_org: Organisation) -> None:
    """Pages read the lease store with one blocking client per process; an asyncio client per
    async_to_sync event loop (one per call) used to stay behind after every page view."""
    from billing.selectors import organisation_open_streams
    from streaming.state import _states
    from widgets.selectors import widget_viewers

    before = len(_states)
    for _ in range(5):
        assert widget_viewers(organisation=pro_org) == {}
        assert organisation_open_streams(organisation=pro_org) == 0
    assert len(_states) == before


# -- edit and delete ------------------------------------------------------------------------------------
def admin_client(organisation: Organisation, make_user: Callable[..., User]) -> Client:
    admin = make_user(f"admin@{organisation.slug}.example")
    organisation.memberships.create(user=admin, role=Role.ADMIN)
    return signed_in(organisation, admin)


def member_client(organisation: Organisation, make_user: Callable[..., User]) -> Client:
    member = make_user(f"member@{organisation.slug}.example")
    organisation.memberships.create(user=member, role=Role.MEMBER)
    return signed_in(organisation, member)


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_edit_a_widget(
    pro_org: Organisation, make_user: Callable[..., User], make_widget: Callable[..., Widget], role: str
) -> None:
    widget = make_widget(pro_org)
    client = owner_client(pro_org) if role == "owner" else admin_client(pro_org, make_user)
    edited = {**FORM, "name": "Sidebar", "kind": "quote_table", "symbols": "nvda", "allowed_origins": SITE}
    response = client.post(f"/widgets/{widget.pk}/edit/", edited)
    assert response.status_code == 302
    assert response["Location"] == f"/widgets/{widget.pk}/"
    with inside(pro_org):
        saved = Widget.objects.get()
    assert (saved.pk, saved.public_id) == (widget.pk, widget.public_id)  # the same widget: snippets keep working
    assert (saved.name, saved.kind, saved.theme) == ("Sidebar", "quote_table", "dark")
    assert saved.symbols == ["NVDA"]
    assert saved.allowed_origins == [SITE]
    assert "Saved “Sidebar”" in client.get(response["Location"]).content.decode()


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("allowed_origins", "https://www.example.com/shop", "without a path"),
        ("allowed_origins", "https://*.example.com", "wildcards are not supported"),
        ("name", "", "This field is required."),
    ],
)
def test_an_invalid_edit_is_refused_and_keeps_the_form(
    pro_org: Organisation, make_widget: Callable[..., Widget], field: str, value: str, error: str
) -> None:
    widget = make_widget(pro_org)
    response = owner_client(pro_org).post(f"/widgets/{widget.pk}/edit/", {**FORM, field: value})
    assert response.status_code == 400
    page = response.content.decode()
    assert error in page
    # What was typed is still in the form, to correct (not the widget's saved "AAPL, MSFT" and SITE).
    assert 'name="symbols" value="aapl, msft"' in page
    typed_origins = value if field == "allowed_origins" else FORM["allowed_origins"]
    assert f'id="edit_allowed_origins">\n{typed_origins}</textarea>' in page
    with inside(pro_org):
        unchanged = Widget.objects.get()
    assert (unchanged.name, unchanged.allowed_origins, unchanged.symbols) == (
        widget.name,
        widget.allowed_origins,
        widget.symbols,
    )


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_delete_a_widget_after_confirming(
    pro_org: Organisation, make_user: Callable[..., User], make_widget: Callable[..., Widget], role: str
) -> None:
    widget = make_widget(pro_org)
    client = owner_client(pro_org) if role == "owner" else admin_client(pro_org, make_user)
    confirm = client.get(f"/widgets/{widget.pk}/delete/")
    assert confirm.status_code == 200
    assert f'action="/widgets/{widget.pk}/delete/"' in confirm.content.decode()
    with inside(pro_org):
        assert Widget.objects.filter(pk=widget.pk).exists()  # asking deletes nothing
    response = client.post(f"/widgets/{widget.pk}/delete/")
    assert response.status_code == 302
    assert response["Location"] == "/widgets/"
    with inside(pro_org):
        assert not Widget.objects.filter(pk=widget.pk).exists()
    assert "Deleted “Homepage”" in client.get("/widgets/").content.decode()
    assert (
        host_client("initech.localhost").post(f"/widgets/{widget.public_id}/token/", HTTP_ORIGIN=SITE).status_code
        == 404
    )


def test_members_cannot_edit_or_delete_widgets(
    pro_org: Organisation, make_user: Callable[..., User], make_widget: Callable[..., Widget]
) -> None:
    widget = make_widget(pro_org)
    client = member_client(pro_org, make_user)
    assert client.post(f"/widgets/{widget.pk}/edit/", {**FORM, "name": "Hijacked"}).status_code == 403
    assert client.get(f"/widgets/{widget.pk}/delete/").status_code == 403
    assert client.post(f"/widgets/{widget.pk}/delete/").status_code == 403
    with inside(pro_org):
        assert Widget.objects.get().name == "Homepage"


def test_another_organisation_cannot_edit_or_delete_a_widget(
    pro_org: Organisation, make_organisation: Callable[..., Organisation], make_widget: Callable[..., Widget]
) -> None:
    widget = make_widget(pro_org)
    client = owner_client(make_organisation("umbrella", plan="pro"))
    assert client.post(f"/widgets/{widget.pk}/edit/", {**FORM, "name": "Hijacked"}).status_code == 404
    assert client.get(f"/widgets/{widget.pk}/delete/").status_code == 404
    assert client.post(f"/widgets/{widget.pk}/delete/").status_code == 404
    with inside(pro_org):
        assert Widget.objects.get().name == "Homepage"
