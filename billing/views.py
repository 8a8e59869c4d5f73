from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .selectors import plan_list_public


def pricing(request: HttpRequest) -> HttpResponse:
    """The public pricing page, read from the database on every request."""
    return render(request, "billing/pricing.html", {"plans": plan_list_public()})
