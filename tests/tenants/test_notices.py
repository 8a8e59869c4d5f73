"""Notices carried to the public host are codes; their text comes from the server, never from the URL."""

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.core import signing
from django.test import Client

from tenants.notices import NOTICE_MESSAGES, NOTICE_PARAM, NOTICE_SALT, Notice
from tests.conftest import host_client
from tests.tenants.conftest import Team, member_client

pytestmark = pytest.mark.django_db

PHISHING = "Your account is suspended: call +1 555 0100 to restore it"


def signed_in(team: Team) -> Client:
    public = host_client("localhost")
    public.force_login(team.member.user)
    return public


def landing(client: Client, token: str) -> str:
    response = client.get("/organisations/?" + urlencode({NOTICE_PARAM: token}), follow=True)
    assert response.status_code == 200
    return response.content.decode()


def token_in(location: str) -> str:
    """The notice token of a redirect to the public host."""
    return parse_qs(urlsplit(location).query)[NOTICE_PARAM][0]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(PHISHING, id="text signed with the key"),
        pytest.param({"code": PHISHING}, id="text as a code"),
        pytest.param({"c": "deleted", "name": PHISHING}, id="text as a parameter"),
    ],
)
def test_a_notice_url_cannot_make_the_page_show_arbitrary_text(team: Team, payload: object) -> None:
    token = signing.dumps(payload, salt=NOTICE_SALT, compress=True)

    assert PHISHING not in landing(signed_in(team), token)


def test_an_unknown_code_shows_nothing(team: Team) -> None:
    token = signing.dumps("no-such-notice-code", salt=NOTICE_SALT, compress=True)

    body = landing(signed_in(team), token)

    assert "no-such-notice-code" not in body
    assert 'class="messages"' not in body


@pytest.mark.parametrize("notice", list(Notice))
def test_the_known_codes_render_their_server_text(team: Team, notice: Notice) -> None:
    token = signing.dumps(notice.value, salt=NOTICE_SALT, compress=True)

    assert NOTICE_MESSAGES[notice] in landing(signed_in(team), token)


def test_an_organisation_renamed_to_a_phishing_line_then_deleted_shows_only_the_server_text(team: Team) -> None:
    owner = member_client(team.owner)
    owner.post("/settings/", {"name": PHISHING})
    deleted = owner.post("/settings/delete/", {"confirmation": "acme"})

    body = landing(signed_in(team), token_in(deleted["Location"]))

    assert PHISHING not in body
    assert NOTICE_MESSAGES[Notice.ORGANISATION_DELETED] in body


def test_leaving_shows_the_server_text_without_the_organisations_name(team: Team) -> None:
    left = member_client(team.member).post("/members/leave/")

    body = landing(signed_in(team), token_in(left["Location"]))

    assert NOTICE_MESSAGES[Notice.ORGANISATION_LEFT] in body
