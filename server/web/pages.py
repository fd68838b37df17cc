"""The hosted pages a customer walks through: consent, ID photo, live check, result."""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

from aiohttp import web

from ..matching.faces import FaceError
from ..matching.images import ImageError
from ..sessions import Session, Status
from ..verifier import FlowError
from .i18n import LOCALES, Translator, from_accept_language, normalise
from .security import (
    EndWith,
    BROWSER_COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    LANG_COOKIE,
    client_address,
    browser_cookie,
    csrf_token,
    csrf_valid,
    read_form,
)
from .services import SERVICES

routes = web.RouteTableDef()
VIDEO_MEDIA = re.compile(r"^m=video [0-9]", re.MULTILINE)  # an offer without a video track cannot be checked


# -- helpers ----------------------------------------------------------------------------------------


def translator_for(request: web.Request, session: Session | None = None) -> Translator:
    chosen = (
        normalise(request.query.get("lang"))
        or normalise(request.cookies.get(LANG_COOKIE))
        or (session.locale if session and session.locale in LOCALES else None)
        or from_accept_language(request.headers.get("Accept-Language"))
        or "en"
    )
    return Translator(chosen)


def render(request: web.Request, template: str, status: int = 200, session: Session | None = None, **context) -> web.Response:
    services = request.app[SERVICES]
    t = context.pop("t", None) or translator_for(request, session)
    browser_key = browser_cookie(request)
    html = services.templates.get_template(template).render(
        t=t,
        session=session,
        merchant=(session.merchant_name if session and session.merchant_name else None) or t("app.title"),
        sandbox=bool(session and session.sandbox),
        csrf=csrf_token(services.secret, browser_key) if browser_key else "",
        csrf_field=CSRF_FIELD,
        retention_days=int(services.settings.retention_days),
        other_locale="zh-CN" if t.locale == "en" else "en",
        **context,
    )
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    if normalise(request.query.get("lang")):
        response.set_cookie(LANG_COOKIE, t.locale, max_age=30 * 86400, httponly=True, samesite="Lax", secure=services.settings.secure_cookies)
    return response


def error_page(request: web.Request, status: int, key: str, **values) -> web.Response:
    t = translator_for(request)
    return render(request, "message.html", status=status, t=t, title=t("app.title"), body=t(key, **values))


def message_page(request: web.Request, status: int, name: str, session: Session | None = None) -> web.Response:
    t = translator_for(request, session)
    return render(request, "message.html", status=status, t=t, session=session, title=t(f"{name}.title"), body=t(f"{name}.body"))


def current(request: web.Request) -> Session:
    """The session bound to this browser by the link it opened, or a clear page saying there is none."""
    services = request.app[SERVICES]
    browser_key = browser_cookie(request)
    session = services.verifier.session_for_browser(browser_key) if browser_key else None
    if session is None or session.redacted_at:
        raise EndWith(message_page(request, 403, "link.unknown"))
    if services.verifier.expire_if_due(session):
        raise EndWith(message_page(request, 410, "link.expired", session))
    return session


def check_csrf(request: web.Request, provided: str | None) -> None:
    services = request.app[SERVICES]
    if not csrf_valid(services.secret, browser_cookie(request), provided):
        raise EndWith(error_page(request, 403, "error.csrf"))


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


# -- pages ------------------------------------------------------------------------------------------


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return render(request, "index.html")


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return web.json_response({"status": "ok", "live_checks": len(services.verifier.live)})


@routes.get("/privacy")
async def privacy(request: web.Request) -> web.Response:
    return render(request, "privacy.html")


@routes.get("/v/{token}")
async def open_link(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    opening = services.verifier.open_link(request.match_info["token"], browser_cookie(request))
    if opening.problem == "unknown":
        return message_page(request, 404, "link.unknown")
    if opening.problem == "expired":
        return message_page(request, 410, "link.expired", opening.session)
    if opening.problem == "used":
        return message_page(request, 410, "link.used", opening.session)
    response = web.HTTPSeeOther("/verify")
    if opening.browser_key:
        lifetime = int(max(60, opening.session.expires_at - opening.session.created_at + 600))  # type: ignore[union-attr]
        response.set_cookie(
            BROWSER_COOKIE,
            opening.browser_key,
            max_age=lifetime,
            httponly=True,
            samesite="Lax",
            secure=services.settings.secure_cookies,
            path="/",
        )
    raise response


@routes.get("/verify")
async def verify(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther(step_url(current(request)))


@routes.get("/verify/consent")
async def consent_page(request: web.Request) -> web.Response:
    session = current(request)
    if session.status != Status.CREATED:
        raise web.HTTPSeeOther(step_url(session))
    return render(request, "consent.html", session=session, error=None)


@routes.post("/verify/consent")
async def consent_submit(request: web.Request) -> web.Response:
    session = current(request)
    form = await read_form(request)
    check_csrf(request, form.get(CSRF_FIELD))
    if session.status != Status.CREATED:
        raise web.HTTPSeeOther(step_url(session))
    t = translator_for(request, session)
    if form.get("agree") != "yes":
        return render(request, "consent.html", status=422, session=session, error=t("consent.required"))
    merchant = session.merchant_name or t("app.title")
    shown = " ".join(
        t(key, merchant=merchant, days=int(request.app[SERVICES].settings.retention_days))
        for key in ("consent.intro", "consent.step1", "consent.step2", "consent.step3", "consent.kept", "consent.biometric", "consent.checkbox")
    )
    session = request.app[SERVICES].verifier.record_consent(session, t.locale, shown, t("consent.version"))
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
        await services.verifier.set_reference(session, data, upload.content_type, "customer", "customer")
    except ImageError as error:
        return again(error.status, error.code)
    except FaceError as error:
        return again(422, error.code)
    except FlowError:
        pass
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
        "csrf": csrf_token(services.secret, (browser_cookie(request) or "")),
        "iceServers": services.settings.ice_servers,
        "messages": {**t.subset("live."), **t.subset("step.")},
    }
    return render(request, "live.html", session=session, t=t, live_config=config)


@routes.post("/verify/live/offer")
async def live_offer(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    browser_key = browser_cookie(request)
    session = services.verifier.session_for_browser(browser_key) if browser_key else None
    if session is None:
        return _json_error(403, "unknown_session", "this browser has no identity check")
    if not csrf_valid(services.secret, browser_key, request.headers.get(CSRF_HEADER)):
        return _json_error(403, "csrf", "missing or wrong CSRF token")
    try:
        body = await request.json()
        sdp, kind = body["sdp"], body["type"]
        label = str(body.get("camera_label", ""))[:200]
        camera = _camera_settings(body.get("camera"))
        if not isinstance(sdp, str) or kind != "offer" or len(sdp) > 100_000 or not VIDEO_MEDIA.search(sdp):
            raise ValueError
    except (ValueError, LookupError, TypeError, RecursionError):  # LookupError: KeyError, or an unknown charset
        return _json_error(400, "bad_offer", "expected JSON with an SDP offer")
    try:
        answer = await services.verifier.start_live(session, sdp, kind, client_address(request), label, camera)
    except FlowError as error:
        return _json_error(error.status, error.code, error.message)
    except ValueError:
        return _json_error(400, "bad_offer", "the SDP offer could not be used")
    return web.json_response(answer)


@routes.post("/verify/live/bye")
async def live_bye(request: web.Request) -> web.Response:
    """Sent with navigator.sendBeacon when the page goes away; the data channel's 'bye' may not make it."""
    services = request.app[SERVICES]
    browser_key = browser_cookie(request)
    session = services.verifier.session_for_browser(browser_key) if browser_key else None
    form = await read_form(request)
    if session is not None and csrf_valid(services.secret, browser_key, form.get(CSRF_FIELD)):
        await services.verifier.stop_live(session, "bye")
    return web.Response(status=204)


@routes.get("/verify/result")
async def result_page(request: web.Request) -> web.Response:
    session = current(request)
    if session.status in (Status.CREATED, Status.CONSENTED, Status.LIVE, Status.PROCESSING) or (
        session.status == Status.ID_UPLOADED and not session.failure_reason
    ):
        raise web.HTTPSeeOther(step_url(session))
    t = translator_for(request, session)
    reason = t(f"reason.{session.failure_reason}") if session.failure_reason else ""
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


def _json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)
