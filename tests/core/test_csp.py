"""Content-Security-Policy: a strict policy on every page, and templates with nothing inline for it to block."""

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.test import Client

from tests.conftest import host_client

ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATE_DIRS = [ROOT / "templates", *ROOT.glob("*/templates")]
SKIPPED_DIRS = {".venv", "node_modules"}

# What the policy must never allow, and the inline code it would block in our own templates.
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.IGNORECASE)


def directives(response: Any) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    parts = [part.strip().split() for part in header.split(";") if part.strip()]
    return {part[0]: part[1:] for part in parts}


def assert_strict(policy: dict[str, list[str]], host: str) -> None:
    assert policy["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy.get("script-src", []) + policy["default-src"]
    assert "'unsafe-eval'" not in policy.get("script-src", []) + policy["default-src"]
    assert "'unsafe-inline'" not in policy.get("style-src", [])
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["form-action"][0] == "'self'"
    assert policy["connect-src"] == ["'self'", f"ws://{host}"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("host", "path", "status"),
    [("localhost", "/", 200), ("localhost", "/pricing/", 200), ("localhost", "/signup/", 200),
     ("localhost", "/accounts/login/", 200), ("acme.localhost", "/accounts/login/", 200),
     ("acme.localhost", "/", 302), ("unknown.localhost", "/", 404)],
)  # fmt: skip
def test_every_page_carries_the_strict_policy(make_organisation: Any, host: str, path: str, status: int) -> None:
    make_organisation("acme")

    response = host_client(host).get(path)

    assert response.status_code == status
    assert_strict(directives(response), host)


@pytest.mark.django_db
def test_the_dashboard_may_open_a_websocket_to_its_own_host_only(make_organisation: Any, make_user: Any) -> None:
    make_organisation("acme", owner=make_user("owner@acme.example"))
    client = host_client("acme.localhost:8000")
    client.post("/accounts/login/", {"login": "owner@acme.example", "password": "correct-horse-battery-staple"})

    dashboard = client.get("/")

    assert dashboard.status_code == 200
    assert directives(dashboard)["connect-src"] == ["'self'", "ws://acme.localhost:8000"]


@pytest.mark.django_db
def test_over_https_the_websocket_source_is_wss(public_client: Client) -> None:
    response = public_client.get("/", secure=True)

    assert directives(response)["connect-src"] == ["'self'", "wss://localhost"]


@pytest.mark.django_db
def test_forms_may_post_to_the_public_host_and_organisation_hosts_only(public_client: Client) -> None:
    """Sign-up and log-in redirect from the public host to an organisation's, which form-action also governs."""
    form_action = directives(public_client.get("/signup/"))["form-action"]

    assert form_action == ["'self'", f"{settings.BASE_DOMAIN}:*", f"*.{settings.BASE_DOMAIN}:*"]


def test_the_database_outage_page_carries_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages that middleware renders before any view (503, unknown organisation) are covered too."""

    def unreachable() -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "ensure_connection", unreachable)

    response = host_client("localhost").get("/pricing/")

    assert response.status_code == 503
    assert_strict(directives(response), "localhost")


def template_files() -> list[Path]:
    return sorted(
        path
        for directory in TEMPLATE_DIRS
        for path in directory.rglob("*.html")
        if not SKIPPED_DIRS.intersection(path.parts)
    )


def test_templates_are_found() -> None:
    names = {path.name for path in template_files()}
    assert {"base.html", "dashboard.html", "members.html", "500.html"} <= names


@pytest.mark.parametrize("pattern", [INLINE_SCRIPT, INLINE_HANDLER, INLINE_STYLE], ids=["script", "handler", "style"])
def test_no_template_has_inline_code_the_policy_would_block(pattern: re.Pattern[str]) -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
        for path in template_files()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]

    assert offenders == []
