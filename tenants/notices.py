"""A one-line notice carried to another host in a signed query parameter, as a code whose text is the server's.

Django's messages live in host-only cookies and sessions, so a message added on an organisation's
host would never show on the public host; the notice travels in the redirect's URL instead. The URL
carries a code only: text in it (an organisation's name included, which its owner chooses) would let
anyone who obtains such a link show their own words on the public site to someone else.
"""

from enum import StrEnum
from urllib.parse import urlencode

from django.core import signing
from django.http import HttpRequest

NOTICE_SALT = "tenants.notice"
NOTICE_MAX_AGE_SECONDS = 5 * 60  # long enough to log in on the way
NOTICE_PARAM = "notice"


class Notice(StrEnum):
    """What happened on the organisation's host that the public host should say."""

    ORGANISATION_LEFT = "left"
    ORGANISATION_DELETED = "deleted"


NOTICE_MESSAGES: dict[Notice, str] = {
    Notice.ORGANISATION_LEFT: "You left the organisation. To come back, ask one of its admins for a new invitation.",
    Notice.ORGANISATION_DELETED: "The organisation was deleted, with all its data and memberships.",
}


def notice_url(*, url: str, notice: Notice) -> str:
    """`url` with the notice's code signed into its query string."""
    return f"{url}?{urlencode({NOTICE_PARAM: signing.dumps(notice.value, salt=NOTICE_SALT)})}"


def notice_from_request(request: HttpRequest) -> str | None:
    """The server's text for the notice a recent, untampered URL names; None otherwise (nothing is shown)."""
    token = request.GET.get(NOTICE_PARAM)
    if not token:
        return None
    try:
        code = signing.loads(token, salt=NOTICE_SALT, max_age=NOTICE_MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    if not isinstance(code, str):
        return None
    try:
        return NOTICE_MESSAGES[Notice(code)]
    except ValueError:  # a code this version does not know: show nothing
        return None
