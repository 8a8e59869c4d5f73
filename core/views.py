from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from billing.selectors import plan_list_public


def landing(request: HttpRequest) -> HttpResponse:
    """The public home page."""
    return render(request, "core/landing.html", {"plans": plan_list_public()})
