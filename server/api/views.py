"""The merchant API under /api/v1: create a session, supply a reference photo, read the result, redact."""

from __future__ import annotations

import json
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web

from ..http.problems import Problem
from ..http.services import SERVICES
from ..liveness.challenges import ChallengeListError
from ..sessions import Session
from ..storage.store import ApiKey
from ..web.i18n import normalise
from ..webhooks import DestinationError, check_destination, check_resolved_destination, iso
from .auth import authenticate

routes = web.RouteTableDef()
OPENAPI = Path(__file__).parent / "openapi.json"
MAX_JSON_BYTES = 64 * 1024
SESSION_FIELDS = {
    "reference_id",
    "merchant_name",
    "callback_url",
    "redirect_url",
    "locale",
    "challenges",
    "fixed_challenges",
    "ttl_s",
    "expected",
}
EXPECTED_LIMITS = {"name": 100, "id_number": 40, "date_of_birth": 10}


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=OPENAPI.read_bytes(), content_type="application/json")


@routes.post("/api/v1/sessions")
async def create_session(request: web.Request) -> web.Response:
    api_key = authenticate(request)
    services = request.app[SERVICES]
    body = await _json_object(request)
    fields = _session_fields(body, services.settings.webhook_allow_private)
    if "callback_url" in fields:  # the name must not lead into our own network now (delivery checks again)
        try:
            await check_resolved_destination(fields["callback_url"], services.outbox.resolver, services.settings.webhook_allow_private)
        except DestinationError as error:
            raise Problem(422, "invalid_fields", "some fields are missing or invalid", errors=[{"field": "callback_url", "message": str(error)}]) from None
    fields.pop("merchant_name", None)  # accepted for compatibility; the pages show the merchant account's display name
    try:
        base_url = services.settings.public_url or str(request.url.origin())
        session, url = services.lifecycle.create(api_key.id, api_key.sandbox, base_url=base_url, actor=_actor(api_key), **fields)
    except ChallengeListError as error:
        raise Problem(422, "invalid_field", str(error), errors=[{"field": "fixed_challenges", "message": str(error)}]) from None
    session = services.store.session(session.id) or session
    data = session_json(services, session, detail=False)
    data["url"] = url
    return web.json_response(data, status=201, headers={"Location": f"/api/v1/sessions/{session.id}"})


@routes.get("/api/v1/sessions/{id}")
async def get_session(request: web.Request) -> web.Response:
    api_key = authenticate(request)
    services = request.app[SERVICES]
    session = _owned_session(request, api_key)
    services.lifecycle.expire_if_due(session)
    session = services.store.session(session.id) or session
    services.store.audit(_actor(api_key), "api.session.read", session.id)
    return web.json_response(session_json(services, session, detail=True))


@routes.delete("/api/v1/sessions/{id}")
async def redact_session(request: web.Request) -> web.Response:
    api_key = authenticate(request)
    services = request.app[SERVICES]
    session = _owned_session(request, api_key)
    session = await services.lifecycle.redact(session, _actor(api_key))
    return web.json_response(session_json(services, session, detail=False))


@routes.post("/api/v1/sessions/{id}/reference-photo")
async def reference_photo(request: web.Request) -> web.Response:
    api_key = authenticate(request)
    services = request.app[SERVICES]
    session = _owned_session(request, api_key)
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type not in ("image/jpeg", "image/png", "image/webp"):
        raise Problem(415, "unsupported_media_type", "send the photo as the raw body with Content-Type image/jpeg, image/png or image/webp")
    limit = services.settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, "too_large", f"the photo is larger than {limit} bytes")
    data = await _read_body(request, limit)
    if len(data) > limit:
        raise Problem(413, "too_large", f"the photo is larger than {limit} bytes")
    session = await services.lifecycle.set_reference(session, data, content_type, "merchant", _actor(api_key))
    return web.json_response(session_json(services, session, detail=False))


# -- representation ---------------------------------------------------------------------------------


def session_json(services, session: Session, detail: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": session.id,
        "object": "session",
        "status": session.status.value,
        "decision": session.decision,
        "failure_reason": session.failure_reason,
        "sandbox": session.sandbox,
        "reference_id": session.reference_id,
        "merchant_name": session.merchant_name,
        "locale": session.locale,
        "created_at": iso(session.created_at),
        "updated_at": iso(session.updated_at),
        "expires_at": iso(session.expires_at),
        "finished_at": iso(session.finished_at),
        "redacted": session.redacted_at is not None,
        "redacted_at": iso(session.redacted_at),
        "evidence_purged_at": iso(session.evidence_purged_at),
        "attempts": {"used": session.attempts, "max": session.max_attempts},
        "reference_photo": {"present": session.has_reference, "source": session.reference_source},
    }
    if not detail:
        return data
    data["liveness"] = session.liveness
    data["match"] = session.match
    data["review"] = session.review
    data["document"] = session.document
    data["live_stats"] = session.live_stats
    data["consent"] = (
        {k: session.consent.get(k) for k in ("version", "locale", "text_sha256")}
        | {"at": iso(session.consent.get("at"))}
        | ({"gallery": session.consent["gallery"]["agreed"]} if "gallery" in session.consent else {})
        if session.consent
        else None
    )
    data["webhooks"] = [
        {
            "id": event["id"],
            "type": event["type"],
            "created_at": iso(event["created_at"]),
            "attempts": event["attempts"],
            "delivered_at": iso(event["delivered_at"]),
            "gave_up_at": iso(event["gave_up_at"]),
            "next_attempt_at": iso(event["next_attempt_at"]) if not event["delivered_at"] else None,
            "attempt_log": [
                {
                    "at": iso(a["attempted_at"]),
                    "status_code": a["status_code"],
                    "error": a["error"],
                    "duration_ms": round(a["duration_ms"] or 0, 1),
                }
                for a in event["attempt_log"]
            ],
        }
        for event in services.store.webhook_events_for(session.id)
    ]
    data["events"] = [
        {"at": iso(e["at"]), "actor": e["actor"], "action": e["action"], "detail": e["detail"]}
        for e in services.store.audit_for(session.id)
    ]
    return data


# -- input ------------------------------------------------------------------------------------------


async def _json_object(request: web.Request) -> dict[str, Any]:
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise Problem(415, "unsupported_media_type", "send a JSON body with Content-Type application/json")
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise Problem(413, "too_large", f"JSON bodies are limited to {MAX_JSON_BYTES} bytes")
    raw = await _read_body(request, MAX_JSON_BYTES)
    if len(raw) > MAX_JSON_BYTES:
        raise Problem(413, "too_large", f"JSON bodies are limited to {MAX_JSON_BYTES} bytes")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # also integers beyond Python's digit limit, not only JSONDecodeError
        raise Problem(400, "malformed_json", "the body is not valid UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise Problem(400, "malformed_json", "the body must be a JSON object")
    return body


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The body, or its first limit + 1 bytes when it is longer (a single read returns what has arrived so far)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await request.content.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _session_fields(body: dict[str, Any], allow_private: bool) -> dict[str, Any]:
    errors: list[dict[str, str]] = []

    def bad(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    for unknown in sorted(set(body) - SESSION_FIELDS):
        bad(unknown[:64], "unknown field")
    out: dict[str, Any] = {}
    reference_id = body.get("reference_id")
    if not isinstance(reference_id, str) or not _clean_text(reference_id, 128):
        bad("reference_id", "required: a string of 1 to 128 printable characters")
    else:
        out["reference_id"] = reference_id
    if body.get("merchant_name") is not None:
        if not isinstance(body["merchant_name"], str) or not _clean_text(body["merchant_name"], 80):
            bad("merchant_name", "a string of 1 to 80 printable characters")
        else:
            out["merchant_name"] = body["merchant_name"]
    for name in ("callback_url", "redirect_url"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > 2048 or not _clean_text(value, 2048):
            bad(name, "an absolute http(s) URL of at most 2048 characters")
            continue
        try:
            check_destination(value, allow_private=allow_private if name == "callback_url" else True)
        except DestinationError as error:
            bad(name, str(error).replace("callback_url", name))
            continue
        out[name] = value
    if body.get("locale") is not None:
        locale = normalise(body["locale"]) if isinstance(body["locale"], str) else None
        if locale is None:
            bad("locale", "one of 'en', 'zh-CN'")
        else:
            out["locale"] = locale
    if body.get("challenges") is not None:
        count = body["challenges"]
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 5:
            bad("challenges", "an integer from 1 to 5")
        else:
            out["challenge_count"] = count
    if body.get("fixed_challenges") is not None:
        fixed = body["fixed_challenges"]
        if not isinstance(fixed, list) or not 1 <= len(fixed) <= 5 or not all(isinstance(c, str) for c in fixed):
            bad("fixed_challenges", "a list of 1 to 5 challenge names (sandbox keys only)")
        else:
            out["fixed_challenges"] = fixed
    if body.get("ttl_s") is not None:
        ttl = body["ttl_s"]
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 60 <= ttl <= 86400:
            bad("ttl_s", "an integer from 60 to 86400 seconds")
        else:
            out["ttl_s"] = ttl
    if body.get("expected") is not None:
        expected = _expected(body["expected"])
        if expected is None:
            bad("expected", 'an object with any of "name" (up to 100 characters), "id_number" (up to 40) and "date_of_birth" (YYYY-MM-DD)')
        else:
            out["expected"] = expected
    if errors:
        raise Problem(422, "invalid_fields", "some fields are missing or invalid", errors=errors)
    return out


def _expected(value: Any) -> dict[str, str] | None:
    """What the merchant expects the document to say, or None when it is not well-formed."""
    if not isinstance(value, dict) or not value or set(value) - set(EXPECTED_LIMITS):
        return None
    if not all(isinstance(v, str) and _clean_text(v, EXPECTED_LIMITS[k]) for k, v in value.items()):
        return None
    if "date_of_birth" in value:
        try:
            date.fromisoformat(value["date_of_birth"])
        except ValueError:
            return None
        if len(value["date_of_birth"]) != 10:
            return None
    return dict(value)


def _clean_text(value: str, limit: int) -> bool:
    """Non-empty, within the limit, and free of control and unassigned characters."""
    if not 1 <= len(value) <= limit or value.strip() != value:
        return False
    return all(unicodedata.category(ch) not in ("Cc", "Cs", "Cn", "Co", "Zl", "Zp") for ch in value)


def _owned_session(request: web.Request, api_key: ApiKey) -> Session:
    """Sessions belong to the merchant account: any of its active keys may use them; others get 404."""
    session_id = request.match_info["id"]
    session = request.app[SERVICES].store.merchant_session(session_id, api_key.merchant_id) if len(session_id) <= 64 else None
    if session is None:
        raise Problem(404, "not_found", "no session with this id for this merchant")
    return session


def _actor(api_key: ApiKey) -> str:
    return f"api_key:{api_key.prefix}"
