"""Rules for input the tenants app takes from outside: subdomains, organisation names, ids."""

import re
import unicodedata

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


# Line breaks (CR, LF, NEL, U+2028/9), tabs and other controls (Cc), and invisible format characters
# (Cf: bidirectional overrides, zero-width spaces) that make a name read as something it is not.
# A name goes into e-mail subjects, where a line break is a header injection.
_NOT_IN_A_NAME = frozenset({"Cc", "Cf", "Zl", "Zp"})


def validate_organisation_name(value: str) -> None:
    """Refuse an organisation name that is not one line of visible text."""
    if any(unicodedata.category(char) in _NOT_IN_A_NAME for char in value):
        raise ValidationError(
            "An organisation name is one line of text: remove line breaks, tabs and invisible control characters.",
            code="control_character",
        )


def schema_name_for(slug: str) -> str:
    """The PostgreSQL schema of the organisation with this (valid) slug."""
    return "org_" + slug.replace("-", "_")


# 18 digits stay below PostgreSQL's bigint maximum (9,223,372,036,854,775,807).
_ID_RE = re.compile(r"[0-9]{1,18}")


def parse_id(value: object) -> int | None:
    """A database id from untrusted input (a JSON int, or ASCII digits), or None for anything else.

    str.isdigit() accepts "²", which int() then refuses with a ValueError (a 500); JSON also
    carries booleans, floats, lists and huge numbers that a pk lookup must never see.
    """
    if isinstance(value, str) and _ID_RE.fullmatch(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**18:
        return value
    return None
