"""Where webhooks may go: http(s) URLs whose host is a public address (unless private ones are allowed).

A webhook URL makes our servers send requests on an organisation's behalf, so it must not reach
into our own network (loopback, private ranges, link-local cloud metadata at 169.254.169.254). The
host is checked when the URL is saved and resolved again before each delivery, since a name's
addresses can change after it was saved.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from .conf import alert_settings

URL_MAX_LENGTH = 2000


class DestinationError(ValueError):
    """A webhook host that resolves to an address we do not post to (or does not resolve)."""


def address_public(address: str) -> bool:
    """True for a globally routable unicast address (not loopback, private, link-local, reserved, multicast)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def addresses_check(host: str, addresses: Iterable[str]) -> None:
    """Refuse a host any of whose addresses is not public (one bad address is enough to reach inside)."""
    if alert_settings.webhook_allow_private:
        return
    found = list(addresses)
    if not found:
        raise DestinationError(f"{host} has no address")
    for address in found:
        if not address_public(address):
            raise DestinationError(f"{host} is a private or local address ({address})")


def webhook_url_clean(url: str) -> str:
    """The URL, stripped; ValidationError keyed "webhook_url" unless http(s) to an allowed host."""
    url = url.strip()
    if not url:
        return ""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError as exc:
        raise ValidationError({"webhook_url": "Enter a full http:// or https:// address."}) from exc
    if len(url) > URL_MAX_LENGTH:
        raise ValidationError({"webhook_url": f"Keep the address to {URL_MAX_LENGTH} characters or fewer."})
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValidationError(
            {"webhook_url": "Leave user names and passwords out of the address; check the signature instead."}
        )
    host = parts.hostname or ""
    try:
        addresses_check(host, _resolve(host, parts.port))
    except DestinationError as exc:
        raise ValidationError(
            {"webhook_url": f"Webhooks cannot go to {host}: {exc}. Use an address on the public internet."}
        ) from exc
    return url


def _resolve(host: str, port: int | None) -> list[str]:
    if alert_settings.webhook_allow_private:
        return []
    try:
        infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DestinationError("the name does not resolve") from exc
    return [str(info[4][0]) for info in infos]


async def destination_check(url: str) -> None:
    """Before a delivery: resolve the URL's host again and refuse it (DestinationError) if it turned private."""
    if alert_settings.webhook_allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DestinationError(f"{host} does not resolve") from exc
    addresses_check(host, [str(info[4][0]) for info in infos])
