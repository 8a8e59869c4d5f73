"""Organisation host: the organisation's settings (owners and admins) and its deletion (owners)."""

from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from tenants.forms import OrganisationDeleteForm, OrganisationRenameForm, form_add_errors
from tenants.middleware import request_membership
from tenants.models import Role
from tenants.notices import Notice, notice_url
from tenants.roles import organisation_settings_check_allowed
from tenants.selectors import public_url
from tenants.services.organisations import organisation_delete, organisation_rename


def _settings_page(
    request: HttpRequest,
    *,
    rename_form: OrganisationRenameForm | None = None,
    delete_form: OrganisationDeleteForm | None = None,
    status: int = 200,
) -> HttpResponse:
    actor = request_membership(request)
    context = {
        "rename_form": rename_form or OrganisationRenameForm(initial={"name": actor.organisation.name}),
        "delete_form": (delete_form or OrganisationDeleteForm()) if actor.role == Role.OWNER else None,
    }
    return render(request, "tenants/settings.html", context, status=status)


@require_http_methods(["GET", "POST"])
def organisation_settings(request: HttpRequest) -> HttpResponse:
    """Show the settings; rename the organisation (its subdomain never changes)."""
    actor = request_membership(request)
    organisation_settings_check_allowed(actor=actor)
    if request.method != "POST":
        return _settings_page(request)
    form = OrganisationRenameForm(request.POST)
    if form.is_valid():
        try:
            organisation = organisation_rename(actor=actor, name=form.cleaned_data["name"])
        except ValidationError as exc:
            form_add_errors(form, exc)
        else:
            messages.success(request, f"The organisation is now called {organisation.name}.")
            return redirect("organisation_settings")
    return _settings_page(request, rename_form=form, status=400)


@require_POST
def organisation_delete_view(request: HttpRequest) -> HttpResponse:
    """Delete the organisation and all its data once its subdomain is typed; then go to the public host."""
    form = OrganisationDeleteForm(request.POST)
    try:
        organisation_delete(actor=request_membership(request), confirmation=request.POST.get("confirmation", ""))
    except ValidationError as exc:
        form_add_errors(form, exc)
        return _settings_page(request, delete_form=form, status=400)
    # The host is gone, and with it any use for this session.
    logout(request)
    return HttpResponseRedirect(
        notice_url(url=public_url(request=request, path="/organisations/"), notice=Notice.ORGANISATION_DELETED)
    )
