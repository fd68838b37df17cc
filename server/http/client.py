"""Who is asking: the client's address, as the rate limits and the audit see it."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from aiohttp import web

from .services import SERVICES

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_FORWARDED_HOPS = 16
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")  # what a proxy adds for the client behind it


def client_address(request: web.Request) -> str:
    settings = request.app[SERVICES].settings
    trusted = trusted_networks(tuple(settings.trusted_proxies))
    return forwarded_client(request.remote, request.headers.getall("X-Forwarded-For", []), trusted, settings.trust_forwarded)


@lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(str(entry), strict=False) for entry in entries)


def forwarded_client(peer: str | None, forwarded_for: list[str], trusted: tuple[Network, ...], trust_peer: bool) -> str:
    """The client as the nearest trusted proxy saw it. X-Forwarded-For is read from the right (what our
    proxies appended) past trusted proxies; its left part is written by the client and never believed."""
    peer = peer or "unknown"
    if not (trust_peer or _trusted(_address(peer), trusted)):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")][-MAX_FORWARDED_HOPS:]
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:  # a trusted proxy would not write this: keep the last good hop
            break
        client = str(address)
        if not _trusted(address, trusted):
            break
    return client


def is_loopback(peer: str | None) -> bool:
    address = _address(peer or "")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket
    return address is not None and address.is_loopback


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, trusted: tuple[Network, ...]) -> bool:
    return address is not None and any(address.version == net.version and address in net for net in trusted)
