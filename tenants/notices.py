"""A one-line notice carried to another host in a signed query parameter.

Django's messages live in host-only cookies and sessions, so a message added on an organisation's
host would never show on the public host; the notice travels in the redirect's URL instead.
"""

from urllib.parse import urlencode

from django.core import signing
from django.http import HttpRequest

NOTICE_SALT = "tenants.notice"
NOTICE_MAX_AGE_SECONDS = 5 * 60  # long enough to log in on the way
NOTICE_PARAM = "notice"


def notice_url(*, url: str, message: str) -> str:
    """`url` with `message` signed into its query string."""
    return f"{url}?{urlencode({NOTICE_PARAM: signing.dumps(message, salt=NOTICE_SALT, compress=True)})}"


def notice_from_request(request: HttpRequest) -> str | None:
    """The notice a recent, untampered URL carries; None otherwise (a bad one is simply not shown)."""
    token = request.GET.get(NOTICE_PARAM)
    if not token:
        return None
    try:
        return str(signing.loads(token, salt=NOTICE_SALT, max_age=NOTICE_MAX_AGE_SECONDS))
    except signing.BadSignature:
        return None
