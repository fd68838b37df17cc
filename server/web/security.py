"""Middlewares and helpers every response goes through: strict headers, no stack traces, rate limits,
CSRF tokens bound to the browser, and an access log that never prints a link token."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from ..api.problems import HTTP_CODES, Problem, problem_response
from .services import SERVICES

log = logging.getLogger(__name__)

BROWSER_COOKIE = "rn_browser"
LANG_COOKIE = "rn_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_IN_PATH = re.compile(r"^/v/[^/?#]+")
BROWSER_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")  # what secrets.token_urlsafe makes


class EndWith(Exception):
    """Raised by a view's helper to answer with a ready response (e.g. 'this link has expired')."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__(response.status)
        self.response = response


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def client_address(request: web.Request) -> str:
    settings = request.app[SERVICES].settings
    if settings.trust_forwarded:
        forwarded = request.headers.get("X-Forwarded-For", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first
    return request.remote or "unknown"


def browser_cookie(request: web.Request) -> str | None:
    """The browser cookie, if it has the form of one we set (a forged one can hold any bytes)."""
    value = request.cookies.get(BROWSER_COOKIE)
    return value if value and BROWSER_KEY.fullmatch(value) else None


def csrf_token(secret: bytes, browser_key: str) -> str:
    return hmac.new(secret, b"csrf:" + browser_key.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: bytes, browser_key: str | None, provided: object) -> bool:
    # `provided` comes from a form (may be a file field) or a header (may hold any bytes): compare bytes.
    if not browser_key or not isinstance(provided, str) or not provided:
        return False
    return hmac.compare_digest(csrf_token(secret, browser_key).encode(), provided.encode("utf-8", "surrogatepass"))


async def read_form(request: web.Request):
    """The posted form; a body that cannot be parsed (bad charset, broken multipart, not UTF-8) is a 400 page."""
    try:
        return await request.post()
    except (ValueError, LookupError, HttpProcessingError):
        from .pages import error_page

        raise EndWith(error_page(request, 400, "error.bad_form")) from None


def content_security_policy(frame_ancestors: str) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob: data:",
            "media-src 'self' blob: mediastream:",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            f"frame-ancestors {frame_ancestors}",
        ]
    )


@web.middleware
async def security_headers(request: web.Request, handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as error:  # redirects and other raised responses get the headers too
        _apply_headers(request, error)
        raise
    _apply_headers(request, response)
    return response


def _apply_headers(request: web.Request, response: web.StreamResponse) -> None:
    settings = request.app[SERVICES].settings
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy(settings.frame_ancestors))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Permissions-Policy", "camera=(self), microphone=(), geolocation=(), payment=()")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    if settings.frame_ancestors.strip() == "'none'":
        headers.setdefault("X-Frame-Options", "DENY")
    if settings.secure_cookies:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if not request.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def errors(request: web.Request, handler) -> web.StreamResponse:
    """Every failure becomes a clear answer: problem+json for the API, a page for people."""
    try:
        return await handler(request)
    except EndWith as ending:
        return ending.response
    except Problem as problem:
        return problem.response(request.path)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        if is_api(request):
            code, detail = HTTP_CODES.get(error.status, ("error", error.reason))
            kept = {k: v for k, v in error.headers.items() if k in ("Allow", "Retry-After")}
            return problem_response(error.status, code, detail, request.path, kept)
        from .pages import error_page

        key = {404: "error.not_found", 413: "error.too_large", 429: "error.rate_limited"}.get(error.status, "error.internal")
        return error_page(request, error.status, key)
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, redact_path(request.path))
        if is_api(request):
            return problem_response(500, "internal_error", "an internal error occurred; it has been logged", request.path)
        from .pages import error_page

        return error_page(request, 500, "error.internal")


@web.middleware
async def page_rate_limit(request: web.Request, handler) -> web.StreamResponse:
    """Per client address for the hosted pages (the API limits per key, see api/auth.py)."""
    if request.path.startswith(("/static/", "/api/", "/healthz")):
        return await handler(request)
    services = request.app[SERVICES]
    wait = services.page_limiter.check(client_address(request))
    if wait:
        raise web.HTTPTooManyRequests(headers={"Retry-After": str(int(wait) + 1)})
    return await handler(request)


def redact_path(path: str) -> str:
    return TOKEN_IN_PATH.sub("/v/<token>", path)


class RedactingAccessLogger(AbstractAccessLogger):
    """Method, path without query and without link tokens, status, time: nothing that identifies a person."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.0fms", request.method, redact_path(request.path), response.status, time * 1000)
