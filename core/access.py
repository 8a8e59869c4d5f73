"""Who may see operational detail (why /readyz fails, metrics): staff, or a holder of METRICS_TOKEN."""

import hmac
import logging
from importlib import import_module

from django.conf import settings
from django.contrib import auth
from django.db import DatabaseError
from django.http import HttpRequest

from tenants.db import activate_public_schema

logger = logging.getLogger(__name__)


def operator_request(request: HttpRequest) -> bool:
    """Whether the request carries `Authorization: Bearer $METRICS_TOKEN` or a staff member's session."""
    return metrics_token_presented(request) or staff_session(request)


def metrics_token_presented(request: HttpRequest) -> bool:
    token = str(getattr(settings, "METRICS_TOKEN", "") or "")
    if not token:
        return False  # unset: no header, however blank, may match
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


def staff_session(request: HttpRequest) -> bool:
    """An active staff user's session, read here when the request comes before the session middleware."""
    user = getattr(request, "user", None)
    if user is None:
        session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if not session_key:
            return False
        request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        try:
            # Users and sessions live in the public schema; a previous request may have left this
            # thread's connection on an organisation's.
            activate_public_schema()
            user = auth.get_user(request)
        except DatabaseError:
            logger.warning("could not read the session to tell whether the caller is staff", exc_info=True)
            return False  # cannot verify: answer as to anyone
    return bool(user.is_active and user.is_staff)
