"""Desktop to phone: a QR code and a short link that continue the session on a phone, and the desktop
page that follows the check there until its result."""

from __future__ import annotations

import io

import segno
from aiohttp import web

from ..errors import RealnameError
from ..http.services import SERVICES
from ..sessions import Session, Status
from .cookies import browser_cookie
from .pages import bound_to_this_browser, check_csrf, current, link_problem_page, merchant_return_url, step_url
from .rendering import CSRF_FIELD, error_page, render, translator_for
from .security import read_form

routes = web.RouteTableDef()

HANDOFF_PATH = "/h/"
POLL_MS = 2000


def qr_svg(text: str) -> str:
    """An inline SVG of the QR code (drawn here: the page loads no script or image from elsewhere)."""
    code = segno.make(text, error="m")
    out = io.BytesIO()
    code.save(out, kind="svg", scale=5, border=4, xmldecl=False, svgns=True, svgclass="qr", lineclass=None, dark="#000", light="#fff")
    return out.getvalue().decode("ascii")


@routes.post("/verify/handoff")
async def offer_handoff(request: web.Request) -> web.Response:
    """The desktop asks to continue on a phone: a page with the QR code and the short link."""
    session = current(request)
    form = await read_form(request)
    check_csrf(request, form.get(CSRF_FIELD))
    services = request.app[SERVICES]
    try:
        link = services.links.offer_handoff(session, browser_cookie(request) or "")
    except RealnameError:  # wrong_state: the session moved on meanwhile, or was handed off already
        raise web.HTTPSeeOther(step_url(session)) from None
    if link is None:
        return error_page(request, 429, "too_many_handoffs")
    base = services.settings.public_url or str(request.url.origin())
    url = f"{base.rstrip('/')}{HANDOFF_PATH}{link.code}"
    t = translator_for(request, session)
    config = {"statusUrl": "/verify/handoff/status", "pollMs": POLL_MS, "messages": t.subset("handoff.")}
    minutes = max(1, round(services.settings.handoff_ttl_s / 60))
    response = render(
        request, "handoff.html", session=session, t=t, url=url, qr=qr_svg(url), minutes=minutes, status_text=t("handoff.waiting"), handoff_config=config
    )
    response.headers["Cache-Control"] = "no-store"  # the page holds a live link
    return response


@routes.get("/verify/handoff")
async def follow_handoff(request: web.Request) -> web.Response:
    """The desktop's page again (a reload, a return): it follows the check, without a usable link."""
    services = request.app[SERVICES]
    desktop_key = browser_cookie(request)
    session = services.links.watched_session(desktop_key) if desktop_key else None
    if session is None or session.redacted_at or services.links.session_for_browser(desktop_key or "") is not None:
        raise web.HTTPSeeOther("/verify")  # nothing handed off, or not yet claimed: still this browser's check
    t = translator_for(request, session)
    config = {"statusUrl": "/verify/handoff/status", "pollMs": POLL_MS, "messages": t.subset("handoff.")}
    progress = _progress(request, session, claimed=True)
    return render(request, "handoff.html", session=session, t=t, url=None, qr=None, minutes=0, status_text=progress["text"], handoff_config=config)


@routes.get("/verify/handoff/status")
async def handoff_status(request: web.Request) -> web.Response:
    """What the desktop shows while the phone does the check, and the result at the end."""
    services = request.app[SERVICES]
    desktop_key = browser_cookie(request)
    session = services.links.watched_session(desktop_key) if desktop_key else None
    if session is None or session.redacted_at:
        return web.json_response({"error": {"code": "unknown_session", "message": "this browser handed off no check"}}, status=404)
    services.lifecycle.expire_if_due(session)
    session = services.store.session(session.id) or session
    return web.json_response(_progress(request, session, services.links.handed_off(session.id)), headers={"Cache-Control": "no-store"})


def _progress(request: web.Request, session: Session, claimed: bool) -> dict:
    t = translator_for(request, session)
    merchant = session.merchant_name or t("app.title")
    if session.status.is_final:
        state, text = "done", t(f"result.{session.status.value}", merchant=merchant)
    elif not claimed:
        state, text = "waiting", t("handoff.waiting")
    elif session.status in (Status.LIVE, Status.PROCESSING):
        state, text = "live", t("handoff.live")
    else:
        state, text = "claimed", t("handoff.claimed")
    final = session.status.is_final
    return {
        "state": state,
        "status": session.status.value,
        "text": text,
        "return_url": merchant_return_url(session) if final else None,
        "return_text": t("result.continue", merchant=merchant) if final and session.redirect_url else None,
    }


@routes.get(HANDOFF_PATH + "{code}")
async def open_handoff(request: web.Request) -> web.Response:
    """The phone opens the link: a start page, nothing used (a preview robot must not use it up)."""
    state = request.app[SERVICES].links.look_handoff(request.match_info["code"])
    if state.problem:
        return link_problem_page(request, state.problem, state.session, kind="handoff")
    return render(request, "start.html", session=state.session, action=request.path)


@routes.post(HANDOFF_PATH + "{code}")
async def claim_handoff(request: web.Request) -> web.Response:
    """The phone starts: the link is used up and the session bound to this phone."""
    claim = request.app[SERVICES].links.claim_handoff(request.match_info["code"])
    if claim.problem:
        return link_problem_page(request, claim.problem, claim.session, kind="handoff")
    raise bound_to_this_browser(request, claim)
