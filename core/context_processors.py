from typing import Any

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, Any]:
    """The current organisation (None on the public host) and the platform's base domain."""
    return {
        "organisation": getattr(request, "organisation", None),
        "membership": getattr(request, "membership", None),
        "base_domain": settings.BASE_DOMAIN,
    }
