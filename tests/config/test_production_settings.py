"""Production's transport and host settings: HTTPS only, HSTS, a proxy trusted only when declared, known hosts."""

from typing import Any

import pytest
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.middleware.security import SecurityMiddleware
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from tests.config.support import PRODUCTION_ENV, production_settings, run_python
from tests.conftest import host_client

ONE_YEAR = 365 * 24 * 3600
TRANSPORT = ["SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_SSL_REDIRECT",
             "SECURE_REDIRECT_EXEMPT", "SECURE_PROXY_SSL_HEADER", "ALLOWED_HOSTS"]  # fmt: skip


@pytest.fixture(scope="module")
def prod() -> dict[str, Any]:
    """Production's settings with BASE_DOMAIN=localhost (the tests' public host) and nothing else set."""
    return production_settings(TRANSPORT, BASE_DOMAIN="localhost")


def test_check_deploy_reports_no_issues_with_production_settings() -> None:
    result = run_python(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_SETTINGS_MODULE="config.settings.prod", BASE_DOMAIN="tickerdeck.example", **PRODUCTION_ENV,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_sends_hsts_for_a_year_including_organisation_subdomains(prod: dict[str, Any]) -> None:
    assert prod["SECURE_HSTS_SECONDS"] == ONE_YEAR
    assert prod["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert prod["SECURE_SSL_REDIRECT"] is True


def test_the_operator_can_shorten_hsts_and_turn_the_redirect_off() -> None:
    values = production_settings(TRANSPORT, SECURE_HSTS_SECONDS="600", SECURE_SSL_REDIRECT="false")

    assert (values["SECURE_HSTS_SECONDS"], values["SECURE_SSL_REDIRECT"]) == (600, False)


@pytest.mark.django_db
def test_plain_http_pages_redirect_to_https(prod: dict[str, Any], public_client: Client) -> None:
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=prod["SECURE_PROXY_SSL_HEADER"]):
        response = public_client.get("/pricing/")

    assert response.status_code == 301
    assert response["Location"] == "https://localhost/pricing/"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_probes_over_plain_http_are_not_redirected(prod: dict[str, Any], path: str) -> None:
    """Load balancers probe over HTTP: SecurityMiddleware itself exempts the probes, whatever the middleware order."""
    request = RequestFactory().get(path, HTTP_HOST="10.0.0.7")

    def probe(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_REDIRECT_EXEMPT=prod["SECURE_REDIRECT_EXEMPT"]):
        response = SecurityMiddleware(probe)(request)

    assert isinstance(response, HttpResponse)  # the probe's own answer, not a redirect
    assert response.status_code == 200


@pytest.mark.django_db
def test_a_client_cannot_claim_https_with_x_forwarded_proto(prod: dict[str, Any], public_client: Client) -> None:
    assert prod["SECURE_PROXY_SSL_HEADER"] is None
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=prod["SECURE_PROXY_SSL_HEADER"]):
        response = public_client.get("/pricing/", HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 301  # still plain HTTP: redirected


@pytest.mark.django_db
def test_x_forwarded_proto_is_trusted_when_the_operator_declares_a_proxy(public_client: Client) -> None:
    header = production_settings(["SECURE_PROXY_SSL_HEADER"], TRUSTED_PROXY_SSL_HEADER="true")[
        "SECURE_PROXY_SSL_HEADER"
    ]
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=tuple(header)):
        response = public_client.get("/pricing/", HTTP_X_FORWARDED_PROTO="https")

    assert header == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert response.status_code == 200


def test_allowed_hosts_are_the_base_domain_and_its_subdomains_plus_the_operators() -> None:
    default = production_settings(["ALLOWED_HOSTS"], BASE_DOMAIN="tickerdeck.example")["ALLOWED_HOSTS"]
    added = production_settings(
        ["ALLOWED_HOSTS"], BASE_DOMAIN="tickerdeck.example", ALLOWED_HOSTS="quotes.acme.example,10.0.0.7"
    )["ALLOWED_HOSTS"]

    assert default == ["tickerdeck.example", ".tickerdeck.example"]
    assert added == ["tickerdeck.example", ".tickerdeck.example", "quotes.acme.example", "10.0.0.7"]


@pytest.mark.django_db
def test_a_host_outside_the_base_domain_is_refused_before_any_organisation_lookup(prod: dict[str, Any]) -> None:
    with override_settings(ALLOWED_HOSTS=prod["ALLOWED_HOSTS"]), CaptureQueriesContext(connection) as queries:
        response = host_client("evil.example").get("/")

    # django-tenants answers a DisallowedHost with a bare 404: no Domain query, no page naming the host.
    assert response.status_code == 404
    assert b"evil.example" not in response.content
    assert len(queries) == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("host", "status"), [("localhost", 200), ("acme.localhost", 302), ("nope.localhost", 404)])
def test_the_base_domain_and_its_subdomains_still_reach_the_organisation_lookup(
    prod: dict[str, Any], make_organisation: Any, host: str, status: int
) -> None:
    make_organisation("acme")
    with override_settings(ALLOWED_HOSTS=prod["ALLOWED_HOSTS"]):
        response = host_client(host).get("/")

    assert response.status_code == status  # landing; log-in for a signed-out visitor; the unknown-organisation page


def test_channel_layer_urls_spread_the_layer_over_several_redis_servers() -> None:
    one = production_settings(["CHANNEL_LAYERS"], REDIS_URL="redis://state:6379/0")
    two = production_settings(["CHANNEL_LAYERS"], REDIS_URL="redis://state:6379/0",
                              CHANNEL_LAYER_URLS="redis://layer-a:6379/0,redis://layer-b:6379/0")  # fmt: skip

    def addresses(values: dict[str, Any]) -> list[str]:
        return [host["address"] for host in values["CHANNEL_LAYERS"]["default"]["CONFIG"]["hosts"]]

    assert addresses(one) == ["redis://state:6379/0"]
    assert addresses(two) == ["redis://layer-a:6379/0", "redis://layer-b:6379/0"]
