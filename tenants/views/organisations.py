"""Sign-up, "Your organisations", the hand-off between hosts, and the dashboard."""

import logging
from urllib.parse import urlencode

from allauth.account.views import SignupView as AllauthSignupView
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from tenants.adapter import SIGNUP_NEXT_SESSION_KEY
from tenants.forms import OrganisationSignupForm, form_add_errors
from tenants.models import Organisation
from tenants.notices import notice_from_request
from tenants.selectors import landing_path, membership_list_for_user, organisation_url
from tenants.services.handoff import handoff_token_create, handoff_token_user

logger = logging.getLogger(__name__)

NOT_CREATED_MESSAGE = "We could not create your organisation just now, and nothing was saved. Please try again."


class SignupView(AllauthSignupView):
    """allauth's sign-up, which here also creates the organisation, then opens its host."""

    def form_valid(self, form: OrganisationSignupForm) -> HttpResponse:
        following = local_path(self.request.POST.get("next") or self.request.GET.get("next"))
        if following:  # kept for after the e-mail confirmation, when verification is mandatory
            self.request.session[SIGNUP_NEXT_SESSION_KEY] = following
        try:
            return super().form_valid(form)
        except ValidationError as exc:
            form_add_errors(form, exc)
        except DatabaseError:
            logger.exception("sign-up failed while creating the organisation")
            form.add_error(None, NOT_CREATED_MESSAGE)
        return self.form_invalid(form)

    def get_success_url(self) -> str:
        # `?next=` names a page of the new organisation's host ("Start with Pro": its Checkout step).
        following = local_path(self.request.POST.get("next") or self.request.GET.get("next"))
        # allauth sets self.user in form_valid; a visitor already signed in is sent on before that.
        user = getattr(self, "user", None) or self.request.user
        return landing_path(user=user, following=following)


@login_required
def organisation_list(request: HttpRequest) -> HttpResponse:
    """Public host: the organisations the signed-in user belongs to."""
    notice = notice_from_request(request)
    if notice is not None:
        # Shown once, from this host's own message store; the URL loses the token.
        messages.success(request, notice)
        return redirect("organisation_list")
    return render(
        request, "tenants/organisation_list.html", {"memberships": membership_list_for_user(user=request.user)}
    )


@login_required
@require_GET
@never_cache
def organisation_open(request: HttpRequest, slug: str) -> HttpResponse:
    """Public host: send a member to their organisation's host, signed in there by a hand-off token."""
    membership = membership_list_for_user(user=request.user).filter(organisation__slug=slug).first()
    if membership is None:
        raise Http404("You are not a member of that organisation.")
    organisation = membership.organisation
    token = handoff_token_create(user=request.user, organisation=organisation)  # type: ignore[arg-type]
    path = reverse("handoff", urlconf=settings.ROOT_URLCONF, args=[token])
    following = local_path(request.GET.get("next"))
    if following:
        path += f"?{urlencode({'next': following})}"
    return HttpResponseRedirect(organisation_url(organisation=organisation, request=request, path=path))


@never_cache
def handoff(request: HttpRequest, token: str) -> HttpResponse:
    """Tenant host: exchange a hand-off token for a session on this host (once)."""
    organisation: Organisation = request.organisation  # type: ignore[attr-defined]
    user = handoff_token_user(token=token, organisation=organisation)
    if user is None:
        return render(request, "tenants/handoff_invalid.html", status=400)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect(local_path(request.GET.get("next")) or "dashboard")


def local_path(value: str | None) -> str | None:
    """`value` when it is a path on the same host (`/billing/start/pro/`), else None: never another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    return value if url_has_allowed_host_and_scheme(value, allowed_hosts=None) else None
