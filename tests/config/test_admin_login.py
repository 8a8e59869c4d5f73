"""Staff log in to the admin through allauth, so its rate limits guard the admin too."""

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client, override_settings

from accounts.models import User
from tests.conftest import PASSWORD, host_client

pytestmark = pytest.mark.django_db

STAFF_EMAIL = "staff@tickerdeck.example"
WRONG_PASSWORD = "not-the-password-0"


@pytest.fixture
def staff() -> User:
    return User.objects.create_superuser(email=STAFF_EMAIL, password=PASSWORD)


def is_logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_the_admin_login_page_sends_staff_to_allauths_login(public_client: Client) -> None:
    response = public_client.get("/admin/login/?next=/admin/billing/plan/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2Fbilling%2Fplan%2F"


def test_an_admin_page_sends_a_signed_out_visitor_through_allauths_login(public_client: Client) -> None:
    to_admin_login = public_client.get("/admin/")
    to_allauth = public_client.get(to_admin_login["Location"])

    assert to_admin_login.status_code == 302
    assert to_admin_login["Location"].startswith("/admin/login/")
    assert to_allauth.status_code == 302
    assert to_allauth["Location"] == "/accounts/login/?next=%2Fadmin%2F"


def test_passwords_posted_to_the_admin_login_are_never_checked(public_client: Client, staff: User) -> None:
    """The audit's case: 30 wrong passwords, then the right one, all on /admin/login/."""
    for _ in range(30):
        public_client.post("/admin/login/", {"username": STAFF_EMAIL, "password": WRONG_PASSWORD})
    response = public_client.post("/admin/login/", {"username": STAFF_EMAIL, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not is_logged_in(public_client)


def test_staff_log_in_through_allauth_and_reach_the_admin(public_client: Client, staff: User) -> None:
    response = public_client.post("/accounts/login/?next=/admin/", {"login": STAFF_EMAIL, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert public_client.get("/admin/").status_code == 200
    assert public_client.get("/admin/login/").status_code == 302  # signed in: the admin's own redirect onwards


def test_a_signed_in_user_who_is_not_staff_is_refused_the_admin_login(public_client: Client, make_user: object) -> None:
    User.objects.create_user(email="member@example.com", password=PASSWORD)
    public_client.post("/accounts/login/", {"login": "member@example.com", "password": PASSWORD})
    assert is_logged_in(public_client)

    assert public_client.get("/admin/login/").status_code == 403


def test_wrong_passwords_for_a_staff_account_are_rate_limited(public_client: Client, staff: User) -> None:
    """allauth's "login_failed" limit: 5 failures per account within 5 minutes, then even the right password waits."""
    for _ in range(5):
        failed = public_client.post("/accounts/login/", {"login": STAFF_EMAIL, "password": WRONG_PASSWORD})
        assert failed.status_code == 200
        assert "Too many failed login attempts" not in failed.content.decode()

    refused = public_client.post("/accounts/login/?next=/admin/", {"login": STAFF_EMAIL, "password": PASSWORD})

    assert "Too many failed login attempts" in refused.content.decode()
    assert not is_logged_in(public_client)
    assert public_client.get("/admin/").status_code == 302


def test_failed_log_ins_on_organisation_hosts_count_against_the_same_account(
    public_client: Client, staff: User, make_organisation: Any
) -> None:
    """An account is the same on every host: spreading guesses over organisations' hosts buys no extra tries."""
    hosts = [host_client(f"{slug}.localhost") for slug in ("acme", "globex")]
    for slug in ("acme", "globex"):
        make_organisation(slug)
    for client in [*hosts, public_client]:
        for _ in range(2):
            client.post("/accounts/login/", {"login": STAFF_EMAIL, "password": WRONG_PASSWORD})

    refused = public_client.post("/accounts/login/", {"login": STAFF_EMAIL, "password": PASSWORD})

    assert "Too many failed login attempts" in refused.content.decode()
    assert not is_logged_in(public_client)


def test_with_mandatory_verification_staff_confirm_their_address_once_then_reach_the_admin(
    public_client: Client, staff: User
) -> None:
    """A `createsuperuser` account has no confirmed address yet: the first log-in mails a link first."""
    with override_settings(ACCOUNT_EMAIL_VERIFICATION="mandatory"):
        first = public_client.post("/accounts/login/?next=/admin/", {"login": STAFF_EMAIL, "password": PASSWORD})
        link = re.search(r"http://localhost(/accounts/confirm-email/[^/\s]+/)", str(mail.outbox[-1].body))
        assert link is not None
        public_client.post(link.group(1))
        second = public_client.post("/accounts/login/?next=/admin/", {"login": STAFF_EMAIL, "password": PASSWORD})

    assert first["Location"] == "/accounts/confirm-email/"
    assert mail.outbox[-1].to == [STAFF_EMAIL]
    assert second["Location"] == "/admin/"
    assert public_client.get("/admin/").status_code == 200
