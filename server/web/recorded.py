"""The recorded check's two requests from the live page: the plan (challenges, timetable, nonce) and the
clip recorded on that plan. JSON answers, like the live page's offer."""

from __future__ import annotations

import asyncio

from aiohttp import StreamReader, web

from ..errors import RealnameError
from ..flow.customers import customer_key
from ..http.client import client_address
from ..http.services import SERVICES
from ..sessions import Status
from .cookies import device_cookie
from .pages import NONCE_HEADER, bound_session, json_error

routes = web.RouteTableDef()

CLIP_TYPES = ("video/webm", "video/mp4")
READ_TIMEOUT_S = 60.0
CHUNK_BYTES = 64 * 1024


@routes.post("/verify/recorded/plan")
async def recording_plan(request: web.Request) -> web.Response:
    session = bound_session(request)
    if isinstance(session, web.Response):
        return session
    services = request.app[SERVICES]
    customer = customer_key(session, client_address(request), device_cookie(request))
    try:
        body = await request.json() if request.content_length and request.content_length < 4096 else {}
    except (ValueError, LookupError, RecursionError):
        body = {}
    label = str(body.get("camera_label", ""))[:200] if isinstance(body, dict) else ""
    try:
        plan = services.recorded.plan(session, customer, label)
    except RealnameError as error:
        return json_error(error.status, error.code, error.message)
    return web.json_response(plan, headers={"Cache-Control": "no-store"})


@routes.post("/verify/recorded/prompt")
async def recording_prompt(request: web.Request) -> web.Response:
    """One challenge of the plan (`{"index": i}`), once the recording has reached its prompt."""
    session = bound_session(request)
    if isinstance(session, web.Response):
        return session
    try:
        body = await request.json() if request.content_length and request.content_length < 256 else {}
    except (ValueError, LookupError, RecursionError):
        body = {}
    index = body.get("index") if isinstance(body, dict) else None
    if not isinstance(index, int) or isinstance(index, bool):
        return json_error(400, "bad_request", "the prompt's index is missing")
    try:
        prompt = request.app[SERVICES].recorded.prompt(session, request.headers.get(NONCE_HEADER, ""), index)
    except RealnameError as error:
        return json_error(error.status, error.code, error.message)
    return web.json_response(prompt, headers={"Cache-Control": "no-store"})


@routes.post("/verify/recorded")
async def recording_upload(request: web.Request) -> web.Response:
    """The clip as the request body (video/webm or video/mp4), its plan's nonce in a header. Everything
    that can be checked without the body is checked before a byte of it is read (a refused body is
    never held), then the body is read in chunks into a buffer of the announced, bounded length."""
    session = bound_session(request)
    if isinstance(session, web.Response):
        return session
    services = request.app[SERVICES]
    limit = services.settings.max_recording_bytes
    if request.content_type not in CLIP_TYPES:
        return json_error(415, "bad_recording", "the recording must be video/webm or video/mp4")
    length = request.content_length
    if length is None or length > limit:
        return json_error(413, "too_large", f"the recording must have a length of at most {limit} bytes")
    if length == 0:
        return json_error(400, "bad_recording", "the recording is empty")
    customer = customer_key(session, client_address(request), device_cookie(request))
    try:
        upload = services.recorded.claim(session, request.headers.get(NONCE_HEADER, ""), customer)
    except RealnameError as error:
        return json_error(error.status, error.code, error.message)
    try:
        clip = await asyncio.wait_for(_read(request.content, length), READ_TIMEOUT_S)
    except (asyncio.IncompleteReadError, TimeoutError, ValueError, ConnectionError):
        services.recorded.release(upload)
        return json_error(400, "bad_recording", "the recording did not arrive whole")
    except BaseException:  # the request was cancelled: its place goes with it
        services.recorded.release(upload)
        raise
    try:
        session = await services.recorded.submit(upload, clip)
    except RealnameError as error:
        return json_error(error.status, error.code, error.message)
    answer = {"status": session.status.value, "resultUrl": "/verify/result"}
    if session.failure_reason and session.status != Status.APPROVED:
        answer["reason"] = session.failure_reason
    return web.json_response(answer)


async def _read(content: StreamReader, length: int) -> bytes:
    buffer = bytearray()
    while len(buffer) < length:
        chunk = await content.read(min(CHUNK_BYTES, length - len(buffer)))
        if not chunk:
            raise asyncio.IncompleteReadError(bytes(buffer), length)
        buffer += chunk
    if not content.at_eof() and await content.read(1):
        raise ValueError("more than the announced length")
    return bytes(buffer)
