"""View decorators of an organisation's host."""

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render

from .middleware import request_membership

View = Callable[..., HttpResponse]
AnyView = TypeVar("AnyView", bound=Callable[..., HttpResponseBase])


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


def missing_is_404(model: type[Model], what: str) -> Callable[[AnyView], AnyView]:
    """An id that is no `model` row of this organisation (its schema) is a 404, whoever asks."""

    def decorator(view: AnyView) -> AnyView:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                return view(request, *args, **kwargs)
            except model.DoesNotExist as exc:  # type: ignore[attr-defined]
                raise Http404(f"No such {what} in this organisation.") from exc

        return cast(AnyView, wrapped)

    return decorator
