"""Who may frame the hosted pages: the origins a merchant listed for the widget (`merchants set-frame-origins`).
A session's customer pages name exactly its merchant's origins in CSP `frame-ancestors`; every other page
keeps the service-wide setting (`'none'` and `X-Frame-Options: DENY` by default)."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

FRAME_ORIGINS = web.RequestKey("frame_origins", tuple)  # the origins a view let frame its answer


class OriginError(ValueError):
    pass


def parse_origin(text: str) -> str:
    """`https://shop.example` or `https://shop.example:8443` in its canonical form; OriginError otherwise
    (no path, query, user, wildcard or other scheme: CSP would read them differently)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise OriginError(f"{text!r} is not an origin like https://shop.example") from None
    if parts.scheme not in ("https", "http") or not parts.hostname or "*" in text:
        raise OriginError(f"{text!r} is not an origin like https://shop.example")
    if parts.username or parts.password or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise OriginError(f"{text!r} must be an origin only (scheme, host and port), like https://shop.example")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default = {"https": 443, "http": 80}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def parse_origins(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(parse_origin(text) for text in texts))
