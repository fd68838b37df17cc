"""The one error type of the service: a stable `code`, a message for people, and the HTTP status.

Views raise these (or the domain raises them and views let them through); the error middleware turns
them into an RFC 9457 problem for the API and a page for customers (`error.<code>` in the locales).
"""

from __future__ import annotations

from typing import Any


class RealnameError(Exception):
    status = 422

    def __init__(self, code: str, message: str, status: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.extra = extra  # further members of the API's problem document (e.g. "errors")


class FlowError(RealnameError):
    """A request the verification flow refuses in the session's current state."""

    status = 409


# aiohttp's own HTTP errors, in the service's words (one code per status, for the API and the pages).
HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "the request is malformed"),
    401: ("unauthorized", "a valid API key is required"),
    403: ("forbidden", "this API key may not do that"),
    404: ("not_found", "no such resource"),
    405: ("method_not_allowed", "this method is not allowed here"),
    409: ("conflict", "the resource is not in a state that allows this"),
    413: ("too_large", "the request body is too large"),
    415: ("unsupported_media_type", "this content type is not accepted here"),
    422: ("unprocessable", "the request could not be processed"),
    429: ("rate_limited", "too many requests"),
    503: ("unavailable", "the service cannot reach its database; try again after Retry-After seconds"),
    507: ("storage_full", "the service's storage is full; nothing was saved; try again after Retry-After seconds"),
}
