"""The hosted pages' cookies and the CSRF token bound to the browser cookie."""

from __future__ import annotations

import hashlib
import hmac
import re

from aiohttp import web

BROWSER_COOKIE = "rn_browser"  # binds this browser to the session whose link it claimed
DEVICE_COOKIE = "rn_device"  # long-lived and random: tells the failure limiter one browser from another
LANG_COOKIE = "rn_lang"
BROWSER_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")  # what secrets.token_urlsafe makes


def set_partitioned_cookie(response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
    """A cookie for pages framed on another site (the widget): sent back in that frame only (CHIPS).
    Written by hand: Python 3.11's http.cookies has no `Partitioned` attribute. `value` is token-safe."""
    response.headers.add("Set-Cookie", f"{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; Secure; SameSite=None; Partitioned")


def browser_cookie(request: web.Request) -> str | None:
    """The browser cookie, if it has the form of one we set (a forged one can hold any bytes)."""
    value = request.cookies.get(BROWSER_COOKIE)
    return value if value and BROWSER_KEY.fullmatch(value) else None


def device_cookie(request: web.Request) -> str | None:
    value = request.cookies.get(DEVICE_COOKIE)
    return value if value and BROWSER_KEY.fullmatch(value) else None


def csrf_token(secret: bytes, browser_key: str) -> str:
    return hmac.new(secret, b"csrf:" + browser_key.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: bytes, browser_key: str | None, provided: object) -> bool:
    # `provided` comes from a form (may be a file field) or a header (may hold any bytes): compare bytes.
    if not browser_key or not isinstance(provided, str) or not provided:
        return False
    return hmac.compare_digest(csrf_token(secret, browser_key).encode(), provided.encode("utf-8", "surrogatepass"))
