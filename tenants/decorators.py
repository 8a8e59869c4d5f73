"""View decorators of an organisation's host."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .middleware import request_membership

View = Callable[..., HttpResponse]


def admin_required(forbidden_template: str) -> Callable[[View], View]:
    """Owners and admins only: a member gets `forbidden_template` (403) saying who can make the change."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request_membership(request).is_admin:
                return render(request, forbidden_template, status=403)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
