"""Middlewares every response goes through: strict headers, no stack traces, page rate limits; and an
access log that never prints a link token or a handoff code."""

from __future__ import annotations

import asyncio
import logging
import math
import re
from http import HTTPStatus

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from ..errors import HTTP_CODES, RealnameError
from ..http.client import client_address
from ..http.problems import Problem, problem_response
from ..http.services import SERVICES
from ..storage.database import DatabaseUnavailable
from .framing import FRAME_ORIGINS
from .rendering import EndWith, error_page

log = logging.getLogger(__name__)

TOKEN_IN_PATH = re.compile(r"^/([vh])/[^/?#]+")  # a session's link, a handoff's short link
PAGE_ERROR_CODES = {404: "not_found", 413: "too_large", 429: "rate_limited", 503: "unavailable", 507: "storage_full"}


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


async def read_form(request: web.Request):
    """The posted form; a body that cannot be parsed (bad charset, broken multipart, not UTF-8) is a 400 page."""
    try:
        return await request.post()
    except (ValueError, LookupError, HttpProcessingError):
        raise EndWith(error_page(request, 400, "bad_form")) from None


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


def frame_ancestors(service_wide: str, merchant_origins: tuple[str, ...]) -> str:
    """The operator's setting, with the session's merchant's origins added ('none' then gives way)."""
    if not merchant_origins:
        return service_wide
    kept = [] if service_wide.strip() == "'none'" else service_wide.split()
    return " ".join(dict.fromkeys([*merchant_origins, *kept]))


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
    frame_origins = request.get(FRAME_ORIGINS)  # a session's page its merchant lets the widget frame
    headers.setdefault("Content-Security-Policy", content_security_policy(frame_ancestors(settings.frame_ancestors, frame_origins or ())))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Permissions-Policy", "camera=(self), microphone=(), geolocation=(), payment=()")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    if settings.frame_ancestors.strip() == "'none'" and not frame_origins:
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
    except RealnameError as error:
        if is_api(request):
            return problem_response(error.status, error.code, error.message, request.path, **error.extra)
        return error_page(request, error.status, error.code)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        if is_api(request):
            code, detail = HTTP_CODES.get(error.status, ("error", error.reason))
            kept = {k: v for k, v in error.headers.items() if k in ("Allow", "Retry-After")}
            return problem_response(error.status, code, detail, request.path, kept)
        return error_page(request, error.status, PAGE_ERROR_CODES.get(error.status, "internal"))
    except DatabaseUnavailable as down:
        # The database restarted, is down or its disk is full: a clear 503 (507) with when to ask again,
        # never a 500 or a trace.
        retry = {"Retry-After": str(max(1, math.ceil(down.retry_after_s)))}
        code, detail = HTTP_CODES[down.status]
        log.warning("%s %s answered %d: %s", request.method, redact_path(request.path), down.status, down)
        if is_api(request):
            return problem_response(down.status, code, detail, request.path, retry)
        page = error_page(request, down.status, PAGE_ERROR_CODES[down.status])
        page.headers.update(retry)
        return page
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, redact_path(request.path))
        if is_api(request):
            return problem_response(500, "internal_error", "an internal error occurred; it has been logged", request.path)
        return error_page(request, 500, "internal")


@web.middleware
async def page_rate_limit(request: web.Request, handler) -> web.StreamResponse:
    """Per client address for the hosted pages (the API limits per key, see api/auth.py), and for
    /healthz/details (its token is not guessed at full speed); the public probe is not limited."""
    if request.path.startswith(("/static/", "/api/")) or request.path == "/healthz":
        return await handler(request)
    services = request.app[SERVICES]
    wait = services.page_limiter.check(client_address(request))
    if wait:
        raise web.HTTPTooManyRequests(headers={"Retry-After": str(int(wait) + 1)})
    return await handler(request)


def redact_path(path: str) -> str:
    return TOKEN_IN_PATH.sub(r"/\1/<token>", path)


class RedactingAccessLogger(AbstractAccessLogger):
    """Method, path without query and without link tokens, status, time: nothing that identifies a person."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %.0fms", request.method, redact_path(request.path), response.status, time * 1000)


SERVER_NAME = "Realname"  # instead of aiohttp's "Python/3.x aiohttp/3.x"
AIOHTTP_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.web", "aiohttp.internal", "aiohttp.client", "aiohttp.websocket")
CHATTY_LOGGERS = ("aioice", "aiortc", "aiohttp.server", "aiohttp.internal", "aiohttp.client")  # INFO names customer IPs
SECRETS_IN_TEXT = (
    (re.compile(r"/([vh])/[^/?#\s'\"\\]+"), r"/\1/<token>"),
    (re.compile(r"(?i)(bearer\s+)[^\s'\"\\,]+"), r"\1<redacted>"),
    (re.compile(r"(rn_live_|rn_test_|whsec_)[A-Za-z0-9_\-]+"), r"\1<redacted>"),
    (re.compile(r"(?i)((?:set-)?cookie:\s*)[^\r\n'\"\\]+"), r"\1<redacted>"),
    (re.compile(r"(?i)(rn_[a-z]+=)[^;\s'\"\\]+"), r"\1<redacted>"),
)


def redact_secrets(text: str) -> str:
    for pattern, replacement in SECRETS_IN_TEXT:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """On loggers we do not write: link tokens, API keys, webhook secrets and cookie values never reach a
    log. A request the HTTP parser refused is one line, without the bytes the client sent."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg, record.args = "refused a malformed HTTP request (%s)", (type(error).__name__,)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"  # the client's fault, not ours
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # bad arguments: a filter must never raise into the caller
            message = str(record.msg)
        record.msg, record.args = redact_secrets(message), None
        if record.exc_info:
            record.exc_text = redact_secrets(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def quiet_third_party_logs() -> None:
    """For the service's logging setup: third-party INFO lines (ICE checks with customer addresses) off."""
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())


def conceal_http_internals() -> None:
    """Idempotent, process-wide: redact aiohttp's own log lines, and answer a request aiohttp cannot parse
    with its status line only (aiohttp echoes the offending bytes, which may hold a link token or an API
    key, and no application hook runs for that answer)."""
    for name in AIOHTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
    if getattr(RequestHandler.handle_error, "conceals", False):
        return
    original = RequestHandler.handle_error

    def handle_error(self, request, status=500, exc=None, message=None):  # type: ignore[no-untyped-def]
        response = original(self, request, status, exc, _status_line(status))
        response.headers["Server"] = SERVER_NAME
        return response

    handle_error.conceals = True  # type: ignore[attr-defined]
    RequestHandler.handle_error = handle_error  # type: ignore[method-assign]


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


async def hide_server_software(request: web.Request, response: web.StreamResponse) -> None:
    """An on_response_prepare hook: no versions in the Server header."""
    response.headers["Server"] = SERVER_NAME
