"""Outgoing URLs that products give us: where live mode may send (the SSRF guard).

In live mode an event endpoint must be `https` and its host must resolve only to public addresses:
never a private, loopback, link-local (cloud metadata at 169.254.169.254), shared (CGNAT),
multicast, reserved or unspecified one. The check runs when a URL is registered and again before
every delivery, and the delivery connects to the very address it checked (a name that resolves
elsewhere the second time, DNS rebinding, gains nothing).
"""

import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeUrl(ValueError):
    """A URL live mode refuses to send to; the message says why, for the product."""


def parse_http_url(url: str, *, require_https: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of an absolute http(s) URL without credentials, or UnsafeUrl."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("Not a valid URL.") from None
    allowed = ("https",) if require_https else ("http", "https")
    if parts.scheme not in allowed:
        raise UnsafeUrl("The URL must use https." if require_https else "The URL must be http or https.")
    if not parts.hostname:
        raise UnsafeUrl("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeUrl("The URL must not carry credentials.")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def public_address(host: str, port: int) -> str:
    """The first address `host` resolves to, if every address it resolves to is public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeUrl(f"The host {host!r} does not resolve.") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise UnsafeUrl(f"The host {host!r} does not resolve.")
    for address in addresses:
        if not is_public(address):
            raise UnsafeUrl(f"The host {host!r} resolves to a private, loopback or link-local address.")
    return addresses[0]


def check_public_url(url: str) -> str:
    """Live mode's rule for a URL to send to: https, resolving to public addresses only; returns the
    address to connect to."""
    _, host, port = parse_http_url(url, require_https=True)
    return public_address(host, port)
