"""Allowed origins: the exact `scheme://host[:port]` a browser sends in its Origin header."""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

MAX_ORIGINS = 20
MAX_ORIGIN_LENGTH = 255
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_normalise(raw: str) -> str:
    """The origin as browsers write it (lower case, no default port, host in ASCII), or ValidationError."""
    text = raw.strip()
    shown = text[:80]
    if not text:
        raise ValidationError("An origin cannot be empty.")
    if len(text) > MAX_ORIGIN_LENGTH:
        raise ValidationError(f"“{shown}…” is longer than {MAX_ORIGIN_LENGTH} characters.")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"“{shown}” is not a valid origin: {exc}.") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValidationError(f"“{shown}” must start with https:// (or http://), e.g. https://www.example.com.")
    if parts.username is not None or parts.password is not None:
        raise ValidationError(f"“{shown}” must not contain a user name or password.")
    if parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValidationError(
            f"“{shown}” must be only scheme://host[:port], without a path, e.g. https://www.example.com."
        )
    host = _host_ascii(parts.hostname or "", shown)
    if "*" in host:
        raise ValidationError(f"“{shown}”: wildcards are not supported; list each site exactly.")
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def origins_normalise(raw: list[str]) -> list[str]:
    """Each origin normalised, once, in the order given; at least one and at most MAX_ORIGINS."""
    errors: list[ValidationError] = []
    origins: dict[str, None] = {}
    for item in raw:
        try:
            origins[origin_normalise(item)] = None
        except ValidationError as exc:
            errors.append(exc)
    if errors:
        raise ValidationError(errors)
    if not origins:
        raise ValidationError("List at least one site allowed to show the widget, e.g. https://www.example.com.")
    if len(origins) > MAX_ORIGINS:
        raise ValidationError(f"List at most {MAX_ORIGINS} origins.")
    return list(origins)


def request_origin(header: str) -> str | None:
    """The Origin header as sent, when it is a usable origin (not missing, not "null"), normalised."""
    if not header or header == "null":
        return None
    try:
        return origin_normalise(header)
    except ValidationError:
        return None


def _host_ascii(host: str, shown: str) -> str:
    if not host:
        raise ValidationError(f"“{shown}” has no host name.")
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ValidationError(f"“{shown}” does not have a valid host name.") from exc
