"""The operator console's pages: sign-in, the review queue, sessions and search, a session's evidence
and the decision on it, redaction. Every page needs a signed-in operator and shows only their merchant's
sessions (another merchant's is a 404); every view and decision is in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..flow.tokens import new_token
from ..gallery.service import GalleryError
from ..http.client import client_address
from ..http.services import SERVICES
from ..invisible import written_out
from ..liveness.analyzer import SCENE_KINDS
from ..operators.blocklist import BlockVerdict, request_block
from ..operators.events import collapse_reads
from ..operators.review import Verdict, decide
from ..operators.signin import Outcome, Role
from ..privacy.access import FACE_IMAGES
from ..sessions import Session, Status
from ..storage.operators import Operator
from .cookies import BROWSER_KEY, csrf_token, csrf_valid
from .rendering import CSRF_FIELD, EndWith, error_page, remember_language, translator_for
from .security import read_form

routes = web.RouteTableDef()

OPERATOR_COOKIE = "rn_operator"  # the signed-in operator's random token (only its hash is stored)
SIGNIN_COOKIE = "rn_console"  # binds the sign-in form's CSRF token to this browser before sign-in
COOKIE_PATH = "/console"
EVIDENCE_IMAGES = FACE_IMAGES + SCENE_KINDS
MAX_FIELD = 200


# -- helpers ----------------------------------------------------------------------------------------


def _cookie(request: web.Request, name: str) -> str | None:
    value = request.cookies.get(name)
    return value if value and BROWSER_KEY.fullmatch(value) else None


def signed_in(request: web.Request) -> tuple[Operator, str]:
    token = _cookie(request, OPERATOR_COOKIE)
    operator = request.app[SERVICES].signin.operator_for(token)
    if operator is None or token is None:
        raise web.HTTPSeeOther("/console/signin")
    return operator, token


def require_admin(request: web.Request, operator: Operator) -> None:
    if operator.role != Role.ADMIN:
        request.app[SERVICES].store.audit(operator.actor, "console.refused", detail={"path": request.path})
        raise EndWith(error_page(request, 403, "forbidden"))


def check_csrf(request: web.Request, bound_to: str | None, provided: object) -> None:
    if not csrf_valid(request.app[SERVICES].secret, f"console:{bound_to}" if bound_to else None, provided):
        raise EndWith(error_page(request, 403, "csrf"))


def own_session(request: web.Request, operator: Operator) -> Session:
    """The session named in the path if it is the operator's merchant's; any other is not found."""
    session = request.app[SERVICES].store.merchant_session(request.match_info["session_id"], operator.merchant_id)
    if session is None:
        raise web.HTTPNotFound()
    return session


def render_console(request: web.Request, template: str, operator: Operator | None, csrf_key: str | None, status: int = 200, **context: Any) -> web.Response:
    services = request.app[SERVICES]
    t = translator_for(request)
    html = services.templates.get_template(template).render(
        t=t,
        operator=operator,
        is_admin=bool(operator and operator.role == Role.ADMIN),
        csrf=csrf_token(services.secret, f"console:{csrf_key}") if csrf_key else "",
        csrf_field=CSRF_FIELD,
        other_locale="zh-CN" if t.locale == "en" else "en",
        when=when,
        written_out=written_out,  # references stored before invisible characters were refused
        **context,
    )
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    remember_language(request, response, t)
    return response


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else ""


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
    secure = request.app[SERVICES].settings.secure_cookies
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="Strict", secure=secure, path=COOKIE_PATH)


def day_start(text: str | None) -> float | None:
    try:
        return datetime.strptime(text or "", "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


# -- signing in and out -----------------------------------------------------------------------------


@routes.get("/console")
async def console_home(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/console/review")


@routes.get("/console/signin")
async def signin_page(request: web.Request) -> web.Response:
    key = _cookie(request, SIGNIN_COOKIE) or new_token()
    response = render_console(request, "console_signin.html", None, key, error=None, merchant_name="", name="")
    set_cookie(request, response, SIGNIN_COOKIE, key, 3600)
    return response


@routes.post("/console/signin")
async def signin(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    form = await read_form(request)
    key = _cookie(request, SIGNIN_COOKIE)
    check_csrf(request, key, form.get(CSRF_FIELD))
    fields = {name: str(form.get(name, ""))[:MAX_FIELD] for name in ("merchant", "name", "code")}
    password = str(form.get("password", ""))[:1024]
    result = await services.signin.attempt(fields["merchant"], fields["name"], password, fields["code"], client_address(request))
    if result.outcome != Outcome.SIGNED_IN or result.token is None:
        # One answer for every failure (unknown name, wrong password or code, a try during a delay).
        error = translator_for(request)("console.signin.wrong")
        return render_console(request, "console_signin.html", None, key, 401, error=error, merchant_name=fields["merchant"], name=fields["name"])
    response = web.HTTPSeeOther("/console/review")
    set_cookie(request, response, OPERATOR_COOKIE, result.token, int(services.settings.console_session_ttl_s))
    response.del_cookie(SIGNIN_COOKIE, path=COOKIE_PATH)
    raise response


@routes.post("/console/signout")
async def signout(request: web.Request) -> web.Response:
    operator, token = signed_in(request)
    form = await read_form(request)
    check_csrf(request, token, form.get(CSRF_FIELD))
    request.app[SERVICES].signin.sign_out(token, operator)
    response = web.HTTPSeeOther("/console/signin")
    response.del_cookie(OPERATOR_COOKIE, path=COOKIE_PATH)
    raise response


# -- the review queue and the sessions --------------------------------------------------------------


@routes.get("/console/review")
async def review_queue(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    operator, token = signed_in(request)
    queue = services.operators.merchant_sessions(operator.merchant_id, [Status.REVIEW], oldest_first=True)
    services.store.audit(operator.actor, "console.queue_viewed", detail={"count": len(queue)})
    return render_console(request, "console_queue.html", operator, token, queue=queue)


@routes.get("/console/sessions")
async def sessions_list(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    operator, token = signed_in(request)
    query = request.query
    reference = query.get("reference", "").strip()[:MAX_FIELD]
    status = query.get("status", "")
    statuses = [Status(status)] if status in {s.value for s in Status} else None
    since, until = day_start(query.get("from")), day_start(query.get("to"))
    until = until + 86400 if until is not None else None
    if reference:
        found = services.store.sessions_by_reference(operator.merchant_id, reference)
        found = [
            s for s in found if (not statuses or s.status in statuses) and (since is None or s.created_at >= since) and (until is None or s.created_at < until)
        ]
    else:
        found = services.operators.merchant_sessions(operator.merchant_id, statuses, since, until)
    # The reference is the merchant's customer data: the audit notes that it was searched for, not what.
    services.store.audit(operator.actor, "console.sessions_searched", detail={"by_reference": bool(reference), "status": status or None, "found": len(found)})
    filters = {"reference": reference, "status": status, "from": query.get("from", "")[:10], "to": query.get("to", "")[:10]}
    return render_console(request, "console_sessions.html", operator, token, sessions=found, filters=filters, statuses=[s.value for s in Status])


@routes.get("/console/sessions/{session_id}")
async def session_page(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    operator, token = signed_in(request)
    session = own_session(request, operator)
    services.store.audit(operator.actor, "console.session_viewed", session.id)
    kinds = set(services.store.evidence_kinds(session.id))
    liveness = session.liveness or {}
    return render_console(
        request,
        "console_session.html",
        operator,
        token,
        session=session,
        images=[kind for kind in FACE_IMAGES if kind in kinds],
        scenes=[kind for kind in SCENE_KINDS if kind in kinds],
        liveness=liveness,
        match=session.match or {},
        signals=liveness.get("signals", []),
        pad=liveness.get("pad") or {},
        votes=services.operators.votes(session.id),
        four_eyes=services.settings.console_four_eyes,
        events=collapse_reads(services.store.audit_for(session.id)),
        blocklisted=bool(services.lifecycle.gallery and services.lifecycle.gallery.blocked(session.id)),
        notice=request.query.get("done", "")[:20],
    )


@routes.get("/console/sessions/{session_id}/evidence/{kind}")
async def evidence_image(request: web.Request) -> web.Response:
    """A face crop or a camera frame kept for review, decrypted only for this answer and never cached."""
    services = request.app[SERVICES]
    operator, _ = signed_in(request)
    session = own_session(request, operator)
    kind = request.match_info["kind"]
    data = services.store.evidence(session.id, kind) if kind in EVIDENCE_IMAGES else None
    if data is None:
        raise web.HTTPNotFound()
    services.store.audit(operator.actor, "console.evidence_viewed", session.id, {"kind": kind})
    return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "no-store, private", "Pragma": "no-cache"})


@routes.post("/console/sessions/{session_id}/decision")
async def decision(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    operator, token = signed_in(request)
    session = own_session(request, operator)
    form = await read_form(request)
    check_csrf(request, token, form.get(CSRF_FIELD))
    outcome = decide(
        services.lifecycle, services.operators, operator, session, str(form.get("decision", "")), str(form.get("reason", "")), services.settings.console_four_eyes
    )
    if outcome.verdict == Verdict.BAD_INPUT:
        return error_page(request, 422, "review_reason_required")
    if outcome.verdict == Verdict.NOT_IN_REVIEW:
        return error_page(request, 409, "review_not_open")
    if outcome.verdict == Verdict.ALREADY_VOTED:
        return error_page(request, 409, "already_voted")
    raise web.HTTPSeeOther(f"/console/sessions/{session.id}?done={outcome.verdict.value}")


@routes.post("/console/sessions/{session_id}/blocklist")
async def blocklist(request: web.Request) -> web.Response:
    """The session's face on the merchant's blocklist, with the operator's reason (audited; four-eyes
    when configured): a later session with this face gets `blocklisted_face`."""
    services = request.app[SERVICES]
    operator, token = signed_in(request)
    session = own_session(request, operator)
    form = await read_form(request)
    check_csrf(request, token, form.get(CSRF_FIELD))
    gallery = services.lifecycle.gallery
    if gallery is None:
        raise web.HTTPNotFound()
    try:
        verdict = request_block(gallery, services.operators, operator, session, str(form.get("reason", "")), services.settings.console_four_eyes)
    except GalleryError:
        return error_page(request, 409, "no_face_template")
    if verdict == BlockVerdict.BAD_INPUT:
        return error_page(request, 422, "blocklist_reason_required")
    if verdict == BlockVerdict.ALREADY_VOTED:
        return error_page(request, 409, "already_voted")
    raise web.HTTPSeeOther(f"/console/sessions/{session.id}?done={verdict.value}")


@routes.post("/console/sessions/{session_id}/redact")
async def redact(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    operator, token = signed_in(request)
    require_admin(request, operator)
    session = own_session(request, operator)
    form = await read_form(request)
    check_csrf(request, token, form.get(CSRF_FIELD))
    if form.get("confirm") != "yes":
        return error_page(request, 422, "confirm_required")
    await services.lifecycle.redact(session, operator.actor)
    raise web.HTTPSeeOther(f"/console/sessions/{session.id}?done=redacted")
