"""RFC 9457 problem details: the one error shape of the API."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web

from ..errors import RealnameError

CONTENT_TYPE = "application/problem+json"


class Problem(RealnameError):
    """Raise from an API view; the error middleware answers with it."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(code, detail, status, **extra)
        self.headers = headers or {}

    @property
    def detail(self) -> str:
        return self.message

    def response(self, instance: str | None = None) -> web.Response:
        return problem_response(self.status, self.code, self.message, instance, self.headers, **self.extra)


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
