"""The offer another instance forwards here for a customer the shared waiting line admitted on this one
(server/flow/cluster_line.py): signed by that instance, answered with this instance's WebRTC answer."""

from __future__ import annotations

import json

from aiohttp import web

from ..errors import RealnameError
from ..flow.cluster_line import OFFER_PATH, SIGNATURE_HEADER
from ..flow.customers import Customer
from ..http.services import SERVICES
from .pages import MAX_OFFER_BODY, _camera_settings, json_error

routes = web.RouteTableDef()


@routes.post(OFFER_PATH)
async def forwarded_offer(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    cluster = services.attempts.cluster
    if cluster is None or request.content_length is None or request.content_length > 2 * MAX_OFFER_BODY:
        raise web.HTTPNotFound()
    payload = await request.read()
    if not cluster.signed(request.headers.get(SIGNATURE_HEADER, ""), payload):
        raise web.HTTPNotFound()  # only the instances sharing the cookie secret know it is here
    body = json.loads(payload)
    session = services.store.session(str(body["session_id"]))
    if session is None:
        return json_error(404, "unknown_session", "this browser has no identity check")
    customer = Customer(**{name: str(body["customer"][name]) for name in ("session", "address", "browser")})
    try:
        label, camera, user_agent = str(body.get("camera_label", ""))[:200], _camera_settings(body.get("camera")), str(body.get("user_agent", ""))[:400]
        answer = await services.attempts.start(session, body.get("sdp"), body.get("type"), customer, label, camera, user_agent, held=True)
    except RealnameError as error:
        return json_error(error.status, error.code, error.message, **error.extra)
    return web.json_response(answer)
