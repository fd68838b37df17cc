"""The recorded check's two requests from the live page: the plan (challenges, timetable, nonce) and the
clip recorded on that plan. JSON answers, like the live page's offer."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..errors import RealnameError
from ..flow.attempts import customer_key
from ..http.client import client_address
from ..http.services import SERVICES
from .cookies import device_cookie
from .pages import NONCE_HEADER, bound_session, json_error

routes = web.RouteTableDef()

CLIP_TYPES = ("video/webm", "video/mp4")
READ_TIMEOUT_S = 60.0


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


@routes.post("/verify/recorded")
async def recording_upload(request: web.Request) -> web.Response:
    """The clip as the request body (video/webm or video/mp4), its plan's nonce in a header."""
    session = bound_session(request)
    if isinstance(session, web.Response):
        return session
    services = request.app[SERVICES]
    limit = services.settings.max_recording_bytes
    if request.content_type not in CLIP_TYPES:
        return json_error(415, "bad_recording", "the recording must be video/webm or video/mp4")
    if request.content_length is None or request.content_length > limit:
        return json_error(413, "too_large", f"the recording must have a length of at most {limit} bytes")
    if request.content_length == 0:
        return json_error(400, "bad_recording", "the recording is empty")
    try:
        clip = await asyncio.wait_for(request.content.readexactly(request.content_length), READ_TIMEOUT_S)
    except (asyncio.IncompleteReadError, TimeoutError):
        return json_error(400, "bad_recording", "the recording did not arrive whole")
    customer = customer_key(session, client_address(request), device_cookie(request))
    try:
        session = await services.recorded.submit(session, request.headers.get(NONCE_HEADER, ""), clip, customer)
    except RealnameError as error:
        return json_error(error.status, error.code, error.message)
    return web.json_response({"status": session.status.value, "resultUrl": "/verify/result"})
