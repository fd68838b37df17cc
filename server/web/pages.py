"""The hosted pages a customer walks through: start, consent, ID photo, live check, result."""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

from ..errors import RealnameError
from ..flow.customers import customer_key
from ..flow.links import Claim
from ..flow.tokens import new_token
from ..http.client import FORWARDING_HEADERS, client_address, is_loopback
from ..http.services import SERVICES
from ..liveness.analyzer import MAX_ANALYSIS_SIDE
from ..liveness.rates import SEND_FPS
from ..privacy.census import FILING_WARNING
from ..privacy.consent import VERSION_KEY, ConsentNotice, consent_notice
from ..privacy.modes import Retention
from ..reasons import NOT_TOLD_TO_THE_CUSTOMER
from ..rtc.bandwidth import RECEIVE_KBPS
from ..rtc.ice import page_ice_servers
from ..sessions import Session, Status
from ..storage.face_data import FaceDataRecords
from .cookies import BROWSER_COOKIE, DEVICE_COOKIE, browser_cookie, csrf_token, csrf_valid, device_cookie, set_partitioned_cookie
from .i18n import Translator
from .rendering import CSRF_FIELD, CSRF_HEADER, EndWith, error_page, message_page, render, translator_for
from .security import read_form

routes = web.RouteTableDef()

DEVICE_COOKIE_DAYS = 30
MAX_OFFER_BODY = 128 * 1024  # an SDP offer is a few KB; parse nothing larger
# Frames a second the page asks the camera and its encoder for: what the steps that need every frame are
# analysed at (server/liveness/rates.py), so the server does not receive and decode frames it would skip.
CAPTURE_FPS = round(SEND_FPS)
# What the live page does with an error code from the offer (its texts come from the locale).
LIVE_ERROR_TEXTS = {
    "busy": "live.error.busy",
    "virtual_camera": "live.error.virtual_camera",
    "too_many_failures": "live.error.too_many_failures",
    "no_attempts_left": "live.error.too_many_failures",
    "recording_stale": "live.error.recording_stale",
    "recording_unavailable": "live.error.unsupported",
}
# Seconds the page waits for its peer connection to connect before it offers to record the check instead.
CONNECT_WAIT_S = 10
NONCE_HEADER = "Realname-Recording-Nonce"


# -- helpers ----------------------------------------------------------------------------------------


def current(request: web.Request) -> Session:
    """The session bound to this browser by the link it claimed, or a clear page saying there is none."""
    services = request.app[SERVICES]
    browser_key = browser_cookie(request)
    session = services.links.session_for_browser(browser_key) if browser_key else None
    if session is None and browser_key and services.links.watched_session(browser_key) is not None:
        raise web.HTTPSeeOther("/verify/handoff")  # a desktop that handed its check to a phone follows it
    if session is None or session.redacted_at:
        raise EndWith(message_page(request, 403, "link.unknown"))
    if services.lifecycle.expire_if_due(session):
        raise EndWith(message_page(request, 410, "link.expired", session))
    return session


def check_csrf(request: web.Request, provided: str | None) -> None:
    services = request.app[SERVICES]
    if not csrf_valid(services.secret, browser_cookie(request), provided):
        raise EndWith(error_page(request, 403, "csrf"))


def step_url(session: Session) -> str:
    if session.status == Status.CREATED:
        return "/verify/consent"
    if session.status == Status.CONSENTED:
        return "/verify/document"
    if session.status == Status.ID_UPLOADED and not session.failure_reason:
        return "/verify/live"
    if session.status in (Status.LIVE, Status.PROCESSING):
        return "/verify/live"
    return "/verify/result"


def merchant_return_url(session: Session) -> str | None:
    if not session.redirect_url:
        return None
    parts = urlsplit(session.redirect_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [("realname_session", session.id), ("realname_status", session.status.value)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def link_problem_page(request: web.Request, problem: str, session: Session | None, kind: str = "link") -> web.Response:
    """kind "handoff": a phone link, whose used and expired pages say what happened to the check."""
    status = {"unknown": 404, "expired": 410, "used": 410}[problem]
    if problem == "unknown":
        return message_page(request, status, "link.unknown")
    return message_page(request, status, f"{kind}.{problem}", session)


# -- pages ------------------------------------------------------------------------------------------


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return render(request, "index.html")


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The public liveness probe (a load balancer's check): up, and nothing about the load."""
    ready = request.app[SERVICES].attempts.ready  # the models are loaded and timed: the first check waits for none
    return web.json_response({"status": "ok", "ready": ready}, headers={"Cache-Control": "no-store"})


@routes.get("/healthz/details")
async def health_details(request: web.Request) -> web.Response:
    """Load and capacity, for the operator: with the status token, or from this host itself."""
    services = request.app[SERVICES]
    if not may_read_status(request, services.settings.status_token):
        return json_error(403, "forbidden", "the details need the status token (Authorization: Bearer) or a request from this host")
    census = FaceDataRecords(services.store).census(services.settings.face_data_filing_threshold)
    body = {
        "status": "ok",
        "ready": services.attempts.ready,
        "live_checks": len(services.attempts.live),
        "capacity": services.attempts.capacity(),
        "face_data": census.health(),
        "warnings": [FILING_WARNING] if census.over_threshold else [],
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def may_read_status(request: web.Request, token: str) -> bool:
    """The status token as a bearer header, or a direct request from this host: a loopback peer with no
    forwarding header (a proxy on this host forwards others' requests from loopback too)."""
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    forwarded = any(name in request.headers for name in FORWARDING_HEADERS)
    return not forwarded and is_loopback(request.remote)


@routes.get("/privacy")
async def privacy(request: web.Request) -> web.Response:
    return render(request, "privacy.html")


@routes.get("/v/{token}")
async def open_link(request: web.Request) -> web.Response:
    """Shows a start page and changes nothing: a chat app's preview robot must not use up the link."""
    services = request.app[SERVICES]
    state = services.links.look(request.match_info["token"], browser_cookie(request))
    if state.problem:
        return link_problem_page(request, state.problem, state.session)
    if state.claimed_by_this_browser:
        raise web.HTTPSeeOther("/verify")
    return render(request, "start.html", session=state.session, action=request.path)


@routes.post("/v/{token}")
async def claim_link(request: web.Request) -> web.Response:
    """The customer starts: the link is used up and bound to this browser by a cookie."""
    services = request.app[SERVICES]
    claim = services.links.claim(request.match_info["token"], browser_cookie(request))
    if claim.problem:
        return link_problem_page(request, claim.problem, claim.session)
    raise bound_to_this_browser(request, claim)


def bound_to_this_browser(request: web.Request, claim: Claim) -> web.HTTPSeeOther:
    """On to the check, with the cookie that binds this browser to the session it claimed (and the
    device cookie the failure limiter tells browsers apart by)."""
    response = web.HTTPSeeOther("/verify")
    services = request.app[SERVICES]
    secure = services.settings.secure_cookies
    # In the widget on the merchant's site the pages are a third party: a Lax cookie would not come back.
    # Partitioned (CHIPS) keeps it to that one top-level site; the forms carry their CSRF tokens as ever.
    framed = secure and claim.session is not None and bool(services.store.frame_origins_of_session(claim.session.id))

    def bake(name: str, value: str, max_age: int) -> None:
        if framed:
            set_partitioned_cookie(response, name, value, max_age)
        else:
            response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="Lax", secure=secure, path="/")

    if claim.browser_key and claim.session is not None:
        bake(BROWSER_COOKIE, claim.browser_key, int(max(60, claim.session.expires_at - claim.session.created_at + 600)))
    if device_cookie(request) is None:
        bake(DEVICE_COOKIE, new_token(), DEVICE_COOKIE_DAYS * 86400)
    return response


@routes.get("/verify")
async def verify(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther(step_url(current(request)))


def notice_for(request: web.Request, session: Session, t: Translator) -> tuple[ConsentNotice, str | None]:
    """The consent notice from the session's steps and its merchant's modes, and the merchant's link to
    verifying without a face check."""
    services = request.app[SERVICES]
    merchant = services.store.merchant_of_session(session.id)
    notice = consent_notice(
        session.merchant_name or t("app.title"),
        photo_by_merchant=session.has_reference and session.reference_source == "merchant",
        retention=Retention(merchant.retention) if merchant else Retention.STANDARD,
        retention_days=int(services.settings.retention_days),
    )
    return notice, merchant.in_person_url if merchant else None


def consent_page_for(request: web.Request, session: Session, status: int = 200, error: str | None = None) -> web.Response:
    t = translator_for(request, session)
    notice, in_person_url = notice_for(request, session, t)
    return render(
        request, "consent.html", status=status, session=session, t=t, notice=notice, in_person_url=in_person_url, error=error,
        **_gallery_offer(request, session),
    )


@routes.get("/verify/consent")
async def consent_page(request: web.Request) -> web.Response:
    session = current(request)
    if session.status != Status.CREATED:
        raise web.HTTPSeeOther(step_url(session))
    return consent_page_for(request, session)


def _gallery_offer(request: web.Request, session: Session) -> dict[str, Any]:
    """Whether the consent page shows the gallery's separate consent (the merchant turned it on)."""
    services = request.app[SERVICES]
    gallery = services.lifecycle.gallery
    return {"gallery": bool(gallery and gallery.offered(session)), "gallery_days": int(services.settings.gallery_retention_days)}


@routes.post("/verify/consent")
async def consent_submit(request: web.Request) -> web.Response:
    session = current(request)
    form = await read_form(request)
    check_csrf(request, form.get(CSRF_FIELD))
    if session.status != Status.CREATED:
        raise web.HTTPSeeOther(step_url(session))
    t = translator_for(request, session)
    offer = _gallery_offer(request, session)
    if form.get("agree") != "yes":
        return consent_page_for(request, session, 422, t("consent.required"))
    notice, _ = notice_for(request, session, t)
    gallery = None
    if offer["gallery"]:  # its own text and its own box: 1:N identification is another purpose
        merchant = session.merchant_name or t("app.title")
        gallery_text = " ".join(t(key, merchant=merchant, days=offer["gallery_days"]) for key in ("consent.gallery", "consent.gallery_checkbox"))
        gallery = (gallery_text, form.get("gallery") == "yes")
    session = request.app[SERVICES].lifecycle.record_consent(session, t.locale, notice.text(t), t(VERSION_KEY), gallery)
    raise web.HTTPSeeOther(step_url(session))


@routes.get("/verify/document")
async def document_page(request: web.Request) -> web.Response:
    session = current(request)
    if session.status != Status.CONSENTED:
        raise web.HTTPSeeOther(step_url(session))
    return render(request, "document.html", session=session, error=None)


@routes.post("/verify/document")
async def document_submit(request: web.Request) -> web.Response:
    session = current(request)
    services = request.app[SERVICES]
    t = translator_for(request, session)
    megabytes = services.settings.max_upload_bytes // (1024 * 1024)

    def again(status: int, code: str) -> web.Response:
        return render(request, "document.html", status=status, session=session, error=t(f"error.{code}", mb=megabytes))

    try:
        form = await read_form(request)
    except web.HTTPRequestEntityTooLarge:
        return again(413, "too_large")
    check_csrf(request, form.get(CSRF_FIELD))
    if session.status != Status.CONSENTED:
        raise web.HTTPSeeOther(step_url(session))
    upload = form.get("photo")
    if not isinstance(upload, web.FileField):
        return again(400, "no_file")
    data = upload.file.read(services.settings.max_upload_bytes + 1)
    try:
        await services.lifecycle.set_reference(session, data, upload.content_type, "customer", "customer", require_document=session.expected is not None)
    except RealnameError as error:
        if error.code == "wrong_state":
            raise web.HTTPSeeOther(step_url(current(request))) from None
        return again(error.status, error.code)
    raise web.HTTPSeeOther("/verify/live")


@routes.get("/verify/live")
async def live_page(request: web.Request) -> web.Response:
    session = current(request)
    if session.status not in (Status.ID_UPLOADED, Status.LIVE, Status.PROCESSING):
        raise web.HTTPSeeOther(step_url(session))
    services = request.app[SERVICES]
    t = translator_for(request, session)
    config = {
        "offerUrl": "/verify/live/offer",
        "byeUrl": "/verify/live/bye",
        "resultUrl": "/verify/result",
        "restartUrl": "/verify",
        "csrf": csrf_token(services.secret, (browser_cookie(request) or "")),
        "csrfHeader": CSRF_HEADER,
        "csrfField": CSRF_FIELD,
        "iceServers": page_ice_servers(services.settings, session.id, services.lifecycle.now()),  # coturn checks their expiry
        "errorTexts": {code: t(key) for code, key in LIVE_ERROR_TEXTS.items()},
        "captureFps": CAPTURE_FPS,
        "captureKbps": RECEIVE_KBPS,
        "analysisSide": MAX_ANALYSIS_SIDE,
        "planUrl": "/verify/recorded/plan",
        "recordUrl": "/verify/recorded",
        "promptUrl": "/verify/recorded/prompt",
        "nonceHeader": NONCE_HEADER,
        # The page gives up before the server would (its bye then gives the attempt back).
        "connectWaitMs": int(max(1.0, min(CONNECT_WAIT_S, services.settings.connect_timeout_s - 3)) * 1000),
        "retryCodes": ["already_live"],  # a previous page of this check is still being closed
        "restartCodes": ["wrong_state"],  # the session moved on: let /verify send the page where it belongs
        "messages": {**t.subset("live."), **t.subset("step.")},
    }
    return render(request, "live.html", session=session, t=t, live_config=config)


def bound_session(request: web.Request) -> Session | web.Response:
    """The session of this browser, with a valid CSRF header; or the JSON error to answer."""
    services = request.app[SERVICES]
    browser_key = browser_cookie(request)
    session = services.links.session_for_browser(browser_key) if browser_key else None
    if session is None:
        return json_error(403, "unknown_session", "this browser has no identity check")
    if not csrf_valid(services.secret, browser_key, request.headers.get(CSRF_HEADER)):
        return json_error(403, "csrf", "missing or wrong CSRF token")
    return session


@routes.post("/verify/live/offer")
async def live_offer(request: web.Request) -> web.Response:
    session = bound_session(request)
    if isinstance(session, web.Response):
        return session
    services = request.app[SERVICES]
    if request.content_length is None or request.content_length > MAX_OFFER_BODY:
        return json_error(400, "bad_offer", "the offer must be a JSON body of at most 128 KB")
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError
        label = str(body.get("camera_label", ""))[:200]
        camera = _camera_settings(body.get("camera"))
    except (ValueError, LookupError, TypeError, RecursionError):  # LookupError: an unknown charset
        return json_error(400, "bad_offer", "expected JSON with an SDP offer")
    customer = customer_key(session, client_address(request), device_cookie(request))
    try:
        user_agent = request.headers.get("User-Agent", "")[:400]
        answer = await services.attempts.start(session, body.get("sdp"), body.get("type"), customer, label, camera, user_agent)
    except RealnameError as error:
        response = json_error(error.status, error.code, error.message, **error.extra)
        if "queue" in error.extra:
            response.headers["Retry-After"] = str(int(error.extra["queue"]["retry_after_s"]))
        return response
    return web.json_response(answer)


@routes.post("/verify/live/bye")
async def live_bye(request: web.Request) -> web.Response:
    """Sent with navigator.sendBeacon when the page goes away; the data channel's 'bye' may not make it."""
    services = request.app[SERVICES]
    browser_key = browser_cookie(request)
    session = services.links.session_for_browser(browser_key) if browser_key else None
    form = await read_form(request)
    if session is not None and csrf_valid(services.secret, browser_key, form.get(CSRF_FIELD)):
        await services.attempts.stop(session, "bye")
    return web.Response(status=204)


@routes.get("/verify/result")
async def result_page(request: web.Request) -> web.Response:
    session = current(request)
    if session.status in (Status.CREATED, Status.CONSENTED, Status.LIVE, Status.PROCESSING) or (
        session.status == Status.ID_UPLOADED and not session.failure_reason
    ):
        raise web.HTTPSeeOther(step_url(session))
    t = translator_for(request, session)
    told = session.failure_reason and session.failure_reason not in NOT_TOLD_TO_THE_CUSTOMER
    reason = t(f"reason.{session.failure_reason}") if told else ""
    can_retry = session.status == Status.ID_UPLOADED and session.attempts_left > 0
    return render(
        request,
        "result.html",
        session=session,
        t=t,
        reason=reason,
        can_retry=can_retry,
        return_url=merchant_return_url(session) if session.status.is_final else None,
    )


@routes.post("/verify/retry")
async def retry(request: web.Request) -> web.Response:
    session = current(request)
    form = await read_form(request)
    check_csrf(request, form.get(CSRF_FIELD))
    if session.status == Status.ID_UPLOADED and session.attempts_left > 0:
        raise web.HTTPSeeOther("/verify/live")
    raise web.HTTPSeeOther(step_url(session))


def _camera_settings(value) -> dict[str, float]:
    """What the browser says its camera delivers (an injection signal: requested vs delivered)."""
    if not isinstance(value, dict):
        return {}
    out = {}
    for name in ("width", "height", "frame_rate"):
        number = value.get(name)
        if isinstance(number, (int, float)) and not isinstance(number, bool) and 0 < number < 100_000:
            out[name] = round(float(number), 2)
    return out


def json_error(status: int, code: str, message: str, **extra) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)
