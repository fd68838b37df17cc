"""Rendering a hosted page: language choice, the merchant's name, the CSRF token; and the message pages
(errors, expired or used links) that the pages and the error middleware both show."""

from __future__ import annotations

from aiohttp import web

from ..http.services import SERVICES
from ..sessions import Session
from .cookies import LANG_COOKIE, browser_cookie, csrf_token
from .framing import FRAME_ORIGINS
from .i18n import LOCALES, Translator, from_accept_language, normalise

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class EndWith(Exception):
    """Raised by a view's helper to answer with a ready response (e.g. 'this link has expired')."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__(response.status)
        self.response = response


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
    frame_origins = services.store.frame_origins_of_session(session.id) if session is not None else ()
    if frame_origins:
        request[FRAME_ORIGINS] = frame_origins  # the security middleware names them in frame-ancestors
    html = services.templates.get_template(template).render(
        t=t,
        session=session,
        merchant=(session.merchant_name if session and session.merchant_name else None) or t("app.title"),
        sandbox=bool(session and session.sandbox),
        csrf=csrf_token(services.secret, browser_key) if browser_key else "",
        csrf_field=CSRF_FIELD,
        retention_days=int(services.settings.retention_days),
        other_locale="zh-CN" if t.locale == "en" else "en",
        frame_origins=frame_origins,  # static/embed.js tells the framing page about the steps (realname.js)
        embed_step=template.removesuffix(".html"),
        **context,
    )
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    remember_language(request, response, t)
    return response


def remember_language(request: web.Request, response: web.StreamResponse, t: Translator) -> None:
    """A language chosen with ?lang= is kept in a cookie for the next pages."""
    if normalise(request.query.get("lang")):
        response.set_cookie(LANG_COOKIE, t.locale, max_age=30 * 86400, httponly=True, samesite="Lax", secure=request.app[SERVICES].settings.secure_cookies)


def error_page(request: web.Request, status: int, code: str, **values) -> web.Response:
    """A page saying what went wrong, in the customer's language: the text of `error.<code>`."""
    t = translator_for(request)
    return render(request, "message.html", status=status, t=t, title=t("app.title"), body=t(f"error.{code}", **values))


def message_page(request: web.Request, status: int, name: str, session: Session | None = None) -> web.Response:
    t = translator_for(request, session)
    return render(request, "message.html", status=status, t=t, session=session, title=t(f"{name}.title"), body=t(f"{name}.body"))


