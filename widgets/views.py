"""Widget pages of an organisation's host, for its owners and admins: create, edit, preview, revoke, delete."""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.limits import organisation_limits
from core.forms import refusal_context
from tenants.decorators import admin_required as tenant_admin_required
from tenants.decorators import missing_is_404
from tenants.middleware import request_organisation
from tenants.selectors import organisation_url

from .forms import WidgetForm
from .models import Widget
from .selectors import widget_get, widget_list, widget_viewers
from .services import PLAN_LIMIT_CODES, widget_create, widget_delete, widget_set_active, widget_update
from .snippets import embed_snippet

View = Callable[..., HttpResponse]
admin_required = tenant_admin_required("widgets/forbidden.html")


widget_or_404 = missing_is_404(Widget, "widget")


@require_GET
@admin_required
def index(request: HttpRequest) -> HttpResponse:
    return _index_page(request, WidgetForm())


@require_POST
@admin_required
def create(request: HttpRequest) -> HttpResponse:
    form = WidgetForm(request.POST)
    if not form.is_valid():
        return _index_page(request, form, status=400)
    try:
        widget = widget_create(
            organisation=request_organisation(request), spec=form.spec(), created_by_id=request.user.pk
        )
    except ValidationError as exc:
        return _index_page(request, form, refusal=exc)
    messages.success(request, f"Created “{widget.name}”. Paste the snippet below into a page of an allowed site.")
    return redirect(widget)


@require_GET
@admin_required
@widget_or_404
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    widget = _widget(pk)
    return _detail_page(request, widget, WidgetForm.of_widget(widget))


@require_POST
@admin_required
@widget_or_404
def edit(request: HttpRequest, pk: int) -> HttpResponse:
    form = WidgetForm(request.POST, auto_id="edit_%s")
    if not form.is_valid():
        return _detail_page(request, _widget(pk), form, status=400)
    try:
        widget = widget_update(organisation=request_organisation(request), widget_id=pk, spec=form.spec())
    except ValidationError as exc:
        return _detail_page(request, _widget(pk), form, refusal=exc)
    messages.success(request, f"Saved “{widget.name}”; open viewers show the change within seconds.")
    return redirect(widget)


@require_POST
@admin_required
@widget_or_404
def set_active(request: HttpRequest, pk: int) -> HttpResponse:
    active = request.POST.get("active")
    if active not in ("0", "1"):
        messages.error(request, "That change could not be read, so nothing was changed. Reload the page and try again.")
        return redirect(reverse("widgets:detail", args=[pk]))
    widget = widget_set_active(organisation=request_organisation(request), widget_id=pk, active=active == "1")
    if widget.active:
        messages.success(request, f"“{widget.name}” is on again: allowed sites can show it.")
    else:
        messages.success(request, f"Revoked “{widget.name}”: its open viewers were closed and new ones are refused.")
    return redirect(widget)


@require_http_methods(["GET", "POST"])
@admin_required
@widget_or_404
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method == "GET":
        return render(request, "widgets/confirm_delete.html", {"widget": _widget(pk)})
    widget = widget_delete(organisation=request_organisation(request), widget_id=pk)
    messages.success(request, f"Deleted “{widget.name}”; pages that embed it now show it as unavailable.")
    return redirect("widgets:index")


# -- pages -----------------------------------------------------------------------------------------
def _index_page(
    request: HttpRequest, form: WidgetForm, *, refusal: ValidationError | None = None, status: int = 200
) -> HttpResponse:
    organisation = request_organisation(request)
    limits = organisation_limits(organisation)
    widgets = list(widget_list())
    viewers = widget_viewers(organisation=organisation)
    context = {
        "rows": [(widget, viewers.get(widget.pk, 0)) for widget in widgets],
        "widget_count": len(widgets),
        "viewers_total": sum(viewers.values()),
        "limits": limits,
        "at_limit": len(widgets) >= limits.max_widgets,
        "form": form,
        **_refusal_context(form, refusal),
    }
    return render(request, "widgets/index.html", context, status=400 if refusal else status)


def _detail_page(
    request: HttpRequest,
    widget: Widget,
    form: WidgetForm,
    *,
    refusal: ValidationError | None = None,
    status: int = 200,
) -> HttpResponse:
    organisation = request_organisation(request)
    viewers = widget_viewers(organisation=organisation)
    base_url = organisation_url(organisation=organisation, request=request, path="")
    context = {
        "widget": widget,
        "form": form,
        "snippet": embed_snippet(public_id=widget.public_id, organisation_base_url=base_url),
        "snippet_origin": base_url,
        "snippet_ws_origin": "ws" + base_url.removeprefix("http"),  # https → wss, http → ws
        "viewers": viewers.get(widget.pk, 0),
        "viewers_total": sum(viewers.values()),
        "limits": organisation_limits(organisation),
        **_refusal_context(form, refusal),
    }
    return render(request, "widgets/detail.html", context, status=400 if refusal else status)


def _refusal_context(form: WidgetForm, refusal: ValidationError | None) -> dict[str, Any]:
    return refusal_context(form, refusal, limit_codes=PLAN_LIMIT_CODES)


def _widget(pk: int) -> Widget:
    widget = widget_get(widget_id=pk)
    if widget is None:
        raise Widget.DoesNotExist(pk)
    return widget
