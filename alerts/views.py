"""Alert pages of an organisation's host: every member reads them and chooses e-mails; owners and admins change them."""

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.limits import organisation_limits
from core.forms import refusal_context
from tenants.decorators import admin_required as tenant_admin_required
from tenants.decorators import missing_is_404
from tenants.middleware import request_membership, request_organisation

from .forms import AlertForm, WebhookForm
from .models import Alert, AlertChannel, AlertSettings
from .selectors import alert_get, alert_ids_evaluated, alert_list, alert_settings_get, event_list
from .services import (
    PLAN_LIMIT_CODES,
    alert_create,
    alert_delete,
    alert_email_choose,
    alert_set_active,
    alert_settings_update,
    alert_update,
    webhook_secret_rotate,
)

View = Callable[..., HttpResponse]
admin_required = tenant_admin_required("alerts/forbidden.html")
EVENTS_PER_PAGE = 50
UNREADABLE = "That change could not be read, so nothing was changed. Reload the page and try again."


alert_or_404 = missing_is_404(Alert, "alert")


# -- list and create -------------------------------------------------------------------------------
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    symbol = request.GET.get("symbol", "").strip().upper()[:20]
    initial = {"symbol": symbol, "name": f"{symbol} alert"} if symbol else {}
    return _index_page(request, AlertForm(initial=initial))


@require_POST
@admin_required
def create(request: HttpRequest) -> HttpResponse:
    form = AlertForm(request.POST)
    if not form.is_valid():
        return _index_page(request, form, status=400)
    try:
        alert = alert_create(
            organisation=request_organisation(request), spec=form.spec(), created_by_id=request.user.pk
        )
    except ValidationError as exc:
        return _index_page(request, form, refusal=exc)
    messages.success(request, f"Created “{alert.name}”: {alert.symbol} is watched from now on.")
    return redirect("alerts:index")


# -- one alert -------------------------------------------------------------------------------------
@require_GET
@admin_required
@alert_or_404
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    alert = _alert(pk)
    return _detail_page(request, alert, AlertForm.of_alert(alert))


@require_POST
@admin_required
@alert_or_404
def edit(request: HttpRequest, pk: int) -> HttpResponse:
    form = AlertForm(request.POST, auto_id="edit_%s")
    if not form.is_valid():
        return _detail_page(request, _alert(pk), form, status=400)
    try:
        alert = alert_update(organisation=request_organisation(request), alert_id=pk, spec=form.spec())
    except ValidationError as exc:
        return _detail_page(request, _alert(pk), form, refusal=exc)
    messages.success(request, f"Saved “{alert.name}”.")
    return redirect("alerts:index")


@require_POST
@admin_required
@alert_or_404
def set_active(request: HttpRequest, pk: int) -> HttpResponse:
    active = request.POST.get("active")
    if active not in ("0", "1"):
        messages.error(request, UNREADABLE)
        return redirect("alerts:index")
    alert = alert_set_active(organisation=request_organisation(request), alert_id=pk, active=active == "1")
    messages.success(request, f"“{alert.name}” is {'on' if alert.active else 'paused: it does not fire'}.")
    return redirect("alerts:index")


@require_http_methods(["GET", "POST"])
@admin_required
@alert_or_404
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method == "GET":
        return render(request, "alerts/confirm_delete.html", {"alert": _alert(pk)})
    alert = alert_delete(organisation=request_organisation(request), alert_id=pk)
    messages.success(request, f"Deleted “{alert.name}”; what it fired stays in the history.")
    return redirect("alerts:index")


@require_POST
@alert_or_404
def email(request: HttpRequest, pk: int) -> HttpResponse:
    chosen = request.POST.get("chosen")
    if chosen not in ("0", "1"):
        messages.error(request, UNREADABLE)
        return redirect("alerts:index")
    user_id = request.user.pk
    if user_id is None:  # the membership gate lets only signed-in members this far
        raise PermissionDenied
    try:
        alert = alert_email_choose(
            organisation=request_organisation(request), alert_id=pk, user_id=user_id, chosen=chosen == "1"
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        told = "You get an e-mail" if chosen == "1" else "You no longer get an e-mail"
        messages.success(request, f"{told} when “{alert.name}” fires.")
    return redirect("alerts:index")


# -- history and settings --------------------------------------------------------------------------
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    page = Paginator(event_list(), EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "alerts/history.html", {"page": page, "events": page.object_list})


@require_http_methods(["GET", "POST"])
@admin_required
def settings_page(request: HttpRequest) -> HttpResponse:
    endpoint = alert_settings_get()
    if request.method == "GET":
        form = WebhookForm(initial={"webhook_url": endpoint.webhook_url if endpoint else ""})
        return _settings_page(request, form, endpoint)
    form = WebhookForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, form, endpoint, status=400)
    try:
        saved = alert_settings_update(
            organisation=request_organisation(request), webhook_url=form.cleaned_data["webhook_url"]
        )
    except ValidationError as exc:
        return _settings_page(request, form, endpoint, refusal=exc)
    if endpoint is None:  # the first save made the secret: shown now, on this response only
        messages.success(request, "Saved. Copy the signing secret below now: it is not shown again.")
        return _settings_page(request, WebhookForm(initial={"webhook_url": saved.webhook_url}), saved, new_secret=True)
    messages.success(request, "Saved the webhook address." if saved.webhook_url else "Webhooks are off.")
    return redirect("alerts:settings")


@require_POST
@admin_required
def rotate(request: HttpRequest) -> HttpResponse:
    endpoint = webhook_secret_rotate(organisation=request_organisation(request))
    messages.success(request, "A new signing secret: copy it now, it is not shown again. The old one no longer works.")
    # Rendered, not redirected: the secret never travels through a message cookie or the session.
    return _settings_page(
        request, WebhookForm(initial={"webhook_url": endpoint.webhook_url}), endpoint, new_secret=True
    )


# -- pages -----------------------------------------------------------------------------------------
def _index_page(
    request: HttpRequest, form: AlertForm, *, refusal: ValidationError | None = None, status: int = 200
) -> HttpResponse:
    limits = organisation_limits(request_organisation(request))
    alerts = list(alert_list())
    evaluated = alert_ids_evaluated(max_alerts=limits.max_alerts) if len(alerts) > limits.max_alerts else None
    context = {
        "rows": [(alert, evaluated is None or alert.pk in evaluated) for alert in alerts],
        "alert_count": len(alerts),
        "limits": limits,
        "at_limit": len(alerts) >= limits.max_alerts,
        "over_limit": evaluated is not None,
        "can_edit": request_membership(request).is_admin,
        "email_channel": AlertChannel.EMAIL,
        "form": form,
        **refusal_context(form, refusal, limit_codes=PLAN_LIMIT_CODES),
    }
    return render(request, "alerts/index.html", context, status=400 if refusal else status)


def _detail_page(
    request: HttpRequest, alert: Alert, form: AlertForm, *, refusal: ValidationError | None = None, status: int = 200
) -> HttpResponse:
    context = {"alert": alert, "form": form, **refusal_context(form, refusal, limit_codes=PLAN_LIMIT_CODES)}
    return render(request, "alerts/detail.html", context, status=400 if refusal else status)


def _settings_page(
    request: HttpRequest,
    form: WebhookForm,
    endpoint: AlertSettings | None,
    *,
    refusal: ValidationError | None = None,
    new_secret: bool = False,
    status: int = 200,
) -> HttpResponse:
    context = {
        "form": form,
        "endpoint": endpoint,
        "new_secret": new_secret,
        **refusal_context(form, refusal, limit_codes=PLAN_LIMIT_CODES),
    }
    response = render(request, "alerts/settings.html", context, status=400 if refusal else status)
    if new_secret:
        response["Cache-Control"] = "no-store"
    return response


def _alert(pk: int) -> Alert:
    alert = alert_get(alert_id=pk)
    if alert is None:
        raise Alert.DoesNotExist(pk)
    return alert
