"""RFC 9457 problem details: the one error shape of the API."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web

CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise from an API view; the error middleware answers with it."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers, self.extra = status, code, detail, headers or {}, extra

    def response(self, instance: str | None = None) -> web.Response:
        return problem_response(self.status, self.code, self.detail, instance, self.headers, **self.extra)


def problem_response(
    status: int,
    code: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body: dict[str, Any] = {
        "type": f"urn:realname:problem:{code}",
        "title": "Unprocessable Content" if status == 422 else HTTPStatus(status).phrase,  # RFC 9110's name
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    text = json.dumps(body, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates echoed from the request (a field name, the path): escape them
        text = json.dumps(body)
    return web.Response(
        status=status,
        text=text,
        content_type=CONTENT_TYPE,
        headers=headers,
    )


# aiohttp's own HTTP errors, in the API's words.
HTTP_CODES = {
    400: ("bad_request", "the request is malformed"),
    401: ("unauthorized", "a valid API key is required"),
    403: ("forbidden", "this API key may not do that"),
    404: ("not_found", "no such resource"),
    405: ("method_not_allowed", "this method is not allowed here"),
    409: ("conflict", "the resource is not in a state that allows this"),
    413: ("payload_too_large", "the request body is too large"),
    415: ("unsupported_media_type", "this content type is not accepted here"),
    422: ("unprocessable", "the request could not be processed"),
    429: ("rate_limited", "too many requests"),
}
