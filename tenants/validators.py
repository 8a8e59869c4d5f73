"""Rules for an organisation's subdomain."""

import re

from django.core.exceptions import ValidationError

SUBDOMAIN_MIN = 3
SUBDOMAIN_MAX = 40
# Names that would shadow the platform's own hosts, or confuse people and mail servers.
RESERVED_SUBDOMAINS = frozenset(
    {
        "about", "account", "accounts", "admin", "api", "app", "apps", "assets", "auth", "billing",
        "blog", "cdn", "dashboard", "demo-admin", "dev", "docs", "email", "ftp", "help", "imap",
        "internal", "login", "logout", "mail", "media", "mx", "ns1", "ns2", "pop", "postgres",
        "pricing", "public", "redis", "root", "signup", "smtp", "stage", "staging", "static",
        "status", "stripe", "support", "system", "template", "tenant", "test", "tickerdeck",
        "webhook", "webhooks", "widget", "widgets", "ws", "wss", "www",
    }
)  # fmt: skip
_SUBDOMAIN_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


def validate_subdomain(value: str) -> None:
    """Refuse a subdomain that is malformed, too short or long, or reserved (not whether it is taken)."""
    if not SUBDOMAIN_MIN <= len(value) <= SUBDOMAIN_MAX:
        raise ValidationError(
            "A subdomain has %(min)d to %(max)d characters.",
            code="length",
            params={"min": SUBDOMAIN_MIN, "max": SUBDOMAIN_MAX},
        )
    if not _SUBDOMAIN_RE.match(value):
        raise ValidationError(
            "Use lower-case letters, digits and single hyphens, starting with a letter (for example acme-labs).",
            code="invalid",
        )
    if value in RESERVED_SUBDOMAINS:
        raise ValidationError(
            "“%(value)s” is reserved; please choose another subdomain.", code="reserved", params={"value": value}
        )


def schema_name_for(slug: str) -> str:
    """The PostgreSQL schema of the organisation with this (valid) slug."""
    return "org_" + slug.replace("-", "_")
