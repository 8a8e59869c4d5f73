"""The sign-up rate limit counts per client address, taken from a proxy's header only when one is declared."""

from typing import Any

import pytest
from django.test import Client, override_settings

from tests.config.support import settings_of
from tests.conftest import host_client

pytestmark = pytest.mark.django_db

SIGNUPS_PER_MINUTE = 20  # allauth's "signup" limit per address
PROXY_SETTINGS = ["ALLAUTH_TRUSTED_PROXY_COUNT", "ALLAUTH_TRUSTED_CLIENT_IP_HEADER"]
# Refused at once by the form (no account, no schema), but each POST counts against the limit.
INVALID_SIGNUP = {"email": "not-an-email", "password1": "x", "organisation_name": "", "subdomain": ""}


def proxy_settings(**env: str) -> dict[str, Any]:
    """The allauth settings a server started with this environment would use."""
    return settings_of("config.settings.test", PROXY_SETTINGS, **env)


def signup_statuses(client: Client, forwarded_for: list[str], **headers: str) -> list[int]:
    return [client.post("/signup/", INVALID_SIGNUP, headers={"X-Forwarded-For": xff, **headers}).status_code
            for xff in forwarded_for]  # fmt: skip


def test_no_proxy_is_trusted_unless_the_operator_says_so() -> None:
    assert proxy_settings() == {"ALLAUTH_TRUSTED_PROXY_COUNT": 0, "ALLAUTH_TRUSTED_CLIENT_IP_HEADER": None}


def test_without_a_trusted_proxy_a_spoofed_x_forwarded_for_does_not_escape_the_limit(public_client: Client) -> None:
    with override_settings(**proxy_settings()):
        statuses = signup_statuses(public_client, [f"198.51.100.{n}" for n in range(SIGNUPS_PER_MINUTE + 1)])

    assert statuses[:SIGNUPS_PER_MINUTE] == [200] * SIGNUPS_PER_MINUTE
    assert statuses[-1] == 429  # every request came from REMOTE_ADDR, whatever it claimed


def test_with_one_trusted_proxy_the_address_it_appended_is_limited(public_client: Client) -> None:
    """The proxy appends the address it saw; what the client put before it is ignored."""
    declared = proxy_settings(TRUSTED_PROXY_COUNT="1")
    spoofed_prefixes = [f"198.51.100.{n}, 203.0.113.7" for n in range(SIGNUPS_PER_MINUTE + 1)]

    with override_settings(**declared):
        statuses = signup_statuses(public_client, spoofed_prefixes)
        other_client = signup_statuses(public_client, ["203.0.113.8"])

    assert declared["ALLAUTH_TRUSTED_PROXY_COUNT"] == 1
    assert statuses[-1] == 429  # 203.0.113.7 used its 20
    assert other_client == [200]  # another address behind the same proxy is not


def test_with_a_trusted_client_ip_header_only_that_header_counts(public_client: Client) -> None:
    declared = proxy_settings(TRUSTED_CLIENT_IP_HEADER="X-Real-IP")

    with override_settings(**declared):
        statuses = signup_statuses(
            public_client, [f"198.51.100.{n}" for n in range(SIGNUPS_PER_MINUTE + 1)], **{"X-Real-IP": "203.0.113.9"}
        )
        without_header = host_client("localhost").post("/signup/", INVALID_SIGNUP)

    assert declared["ALLAUTH_TRUSTED_CLIENT_IP_HEADER"] == "X-Real-IP"
    assert statuses[-1] == 429
    assert without_header.status_code == 403  # the proxy did not say who the client is: refused, not guessed
