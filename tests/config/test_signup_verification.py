"""Sign-up with mandatory e-mail verification: the mail, the confirmation, then the new organisation."""

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.cache import cache
from django.test import Client, override_settings

from tenants.models import Organisation
from tests.config.support import PRODUCTION_ENV, REAL_SECRET_KEY, run_python, settings_of
from tests.conftest import PASSWORD, host_client

pytestmark = pytest.mark.django_db

EMAIL = "founder@acme.example"
SIGNUP = {"email": EMAIL, "password1": PASSWORD, "organisation_name": "Acme Labs", "subdomain": "acme-labs"}


@pytest.fixture(autouse=True)
def mandatory_verification() -> Iterator[None]:
    with override_settings(ACCOUNT_EMAIL_VERIFICATION="mandatory"):
        yield


def confirmation_path(host: str = "localhost") -> str:
    """The path of the link in the one verification mail sent, which must point at `host`."""
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [EMAIL]
    match = re.search(r"http://([^/\s]+)(/accounts/confirm-email/[^/\s]+/)", str(mail.outbox[0].body))
    assert match is not None, mail.outbox[0].body
    assert match.group(1) == host
    return match.group(2)


def assert_reaches_the_dashboard(public: Client, open_path: str) -> None:
    handoff = public.get(open_path)
    assert handoff.status_code == 302
    assert handoff["Location"].startswith("http://acme-labs.localhost/handoff/")
    tenant = host_client("acme-labs.localhost")
    assert tenant.get(handoff["Location"].removeprefix("http://acme-labs.localhost"))["Location"] == "/"
    dashboard = tenant.get("/")
    assert dashboard.status_code == 200
    assert "Acme Labs" in dashboard.content.decode()


def test_signup_sends_the_verification_mail_and_logs_nobody_in(public_client: Client) -> None:
    response = public_client.post("/signup/", SIGNUP)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in public_client.session
    assert Organisation.objects.filter(slug="acme-labs").exists()
    assert not EmailAddress.objects.get(email=EMAIL).verified
    confirmation_path()


def test_confirming_in_the_same_browser_opens_the_new_organisation(public_client: Client) -> None:
    public_client.post("/signup/", SIGNUP)
    path = confirmation_path()

    assert public_client.get(path).status_code == 200  # a button: mail scanners' GETs confirm nothing
    confirmed = public_client.post(path)

    assert confirmed.status_code == 302
    assert confirmed["Location"] == "/organisations/acme-labs/open/"
    assert EmailAddress.objects.get(email=EMAIL).verified
    assert_reaches_the_dashboard(public_client, confirmed["Location"])


def test_a_paid_plans_sign_up_goes_on_to_its_checkout_step_after_the_confirmation(public_client: Client) -> None:
    """ "Start with Pro" under mandatory verification: the confirmation leads on to the Checkout step."""
    public_client.post("/signup/?next=/billing/start/pro/", SIGNUP)
    confirmed = public_client.post(confirmation_path())

    location = urlsplit(confirmed["Location"])
    assert (location.path, parse_qs(location.query)) == (
        "/organisations/acme-labs/open/",
        {"next": ["/billing/start/pro/"]},
    )
    handoff = public_client.get(confirmed["Location"])
    assert handoff["Location"].startswith("http://acme-labs.localhost/handoff/")
    assert handoff["Location"].endswith("?next=%2Fbilling%2Fstart%2Fpro%2F")


def test_confirming_in_another_browser_leads_through_log_in_to_the_organisation(public_client: Client) -> None:
    public_client.post("/signup/", SIGNUP)
    other_browser = host_client("localhost")

    confirmed = other_browser.post(confirmation_path())
    to_login = confirmed["Location"]
    logged_in = other_browser.post(to_login, {"login": EMAIL, "password": PASSWORD})

    assert to_login == "/accounts/login/?next=/organisations/acme-labs/open/"
    assert logged_in.status_code == 302
    assert logged_in["Location"] == "/organisations/acme-labs/open/"
    assert_reaches_the_dashboard(other_browser, logged_in["Location"])


def test_logging_in_on_the_organisation_host_before_confirming_sends_the_link_for_the_public_host(
    public_client: Client,
) -> None:
    public_client.post("/signup/", SIGNUP)
    mail.outbox.clear()
    cache.clear()  # past allauth's cool-down (one verification mail per address per 3 minutes)
    tenant = host_client("acme-labs.localhost")

    response = tenant.post("/accounts/login/", {"login": EMAIL, "password": PASSWORD})

    # The organisation's host admits members only, so the "check your mail" page and the link
    # (which the owner opens signed out) live on the public host.
    assert response.status_code == 302
    assert response["Location"] == "http://localhost/accounts/confirm-email/"
    assert "_auth_user_id" not in tenant.session
    assert public_client.get(response["Location"].removeprefix("http://localhost")).status_code == 200
    assert public_client.post(confirmation_path("localhost")).status_code == 302


def test_verification_is_mandatory_in_production_and_off_in_development_and_tests() -> None:
    names = ["ACCOUNT_EMAIL_VERIFICATION"]
    assert settings_of("config.settings.prod", names, **PRODUCTION_ENV) == {"ACCOUNT_EMAIL_VERIFICATION": "mandatory"}
    assert settings_of("config.settings.dev", names) == {"ACCOUNT_EMAIL_VERIFICATION": "none"}
    assert settings_of("config.settings.test", names) == {"ACCOUNT_EMAIL_VERIFICATION": "none"}
    assert settings_of("config.settings.dev", names, ACCOUNT_EMAIL_VERIFICATION="mandatory") == {
        "ACCOUNT_EMAIL_VERIFICATION": "mandatory"
    }
    assert settings_of("config.settings.prod", names, ACCOUNT_EMAIL_VERIFICATION="optional", **PRODUCTION_ENV) == {
        "ACCOUNT_EMAIL_VERIFICATION": "optional"
    }


def test_an_unknown_verification_mode_stops_the_process_with_the_choices() -> None:
    result = run_python(["manage.py", "check"], DJANGO_SETTINGS_MODULE="config.settings.dev",
                        ACCOUNT_EMAIL_VERIFICATION="mandatroy")  # fmt: skip

    assert result.returncode != 0
    assert "ACCOUNT_EMAIL_VERIFICATION" in result.stderr
    assert "mandatory" in result.stderr


def test_production_needs_a_mail_server_to_send_verification_mails() -> None:
    refused = run_python(["manage.py", "check"], DJANGO_SETTINGS_MODULE="config.settings.prod",
                         SECRET_KEY=REAL_SECRET_KEY)  # fmt: skip
    smtp = settings_of(
        "config.settings.prod", ["EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_USE_TLS"], **PRODUCTION_ENV
    )

    assert refused.returncode != 0
    assert "Set the EMAIL_URL environment variable" in refused.stderr
    assert smtp == {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "smtp.example.com",
                    "EMAIL_PORT": 587, "EMAIL_USE_TLS": True}  # fmt: skip
