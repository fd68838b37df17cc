"""The merchant API under /api/v1: create a session, supply a reference photo, read the result, redact."""

from __future__ import annotations

import json
import time
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web

from ..flow import sandbox
from ..http.problems import Problem
from ..http.services import SERVICES
from ..invisible import invisible_characters
from ..liveness.analyzer import SCENE_KINDS
from ..liveness.challenges import ChallengeListError
from ..privacy.access import FACE_IMAGES, NOT_HELD, biometric_items
from ..sessions import Session
from ..storage.face_data import FaceDataRecords
from ..storage.store import ApiKey
from ..web.i18n import normalise
from ..webhooks import DestinationError, check_destination, check_resolved_destination, iso
from .auth import authenticate

routes = web.RouteTableDef()
OPENAPI = Path(__file__).parent / "openapi.json"
MAX_JSON_BYTES = 64 * 1024
SESSION_FIELDS = {
    "reference_id",
    "callback_url",
    "redirect_url",
    "locale",
    "challenges",
    "fixed_challenges",
    "ttl_s",
    "expected",
}
# Fields a merchant may expect to send, refused with the reason (customers never see a name sent by an API call).
REFUSED_FIELDS = {
    "merchant_name": "not accepted: the hosted pages show the merchant account's display name (`merchants set-display-name`)",
}
EXPECTED_LIMITS = {"name": 100, "id_number": 40, "date_of_birth": 10}


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=OPENAPI.read_bytes(), content_type="application/json")


@routes.get("/.well-known/jwks.json")
async def jwks(request: web.Request) -> web.Response:
    """The public keys that verify receipts, newest first; no key needed to read them."""
    services = request.app[SERVICES]
    keys = services.lifecycle.receipts.keys.jwks() if services.lifecycle.receipts else {"keys": []}
    return web.json_response(keys, headers={"Cache-Control": "public, max-age=300"})


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


@routes.get("/api/v1/sessions/{id}/export")
async def export_session(request: web.Request) -> web.Response:
    """A person's access request: everything held about the session, readable. `?images=true` adds the
    face images (the person's own pictures) as base64; face templates are only ever described."""
    api_key = authenticate(request)
    services = request.app[SERVICES]
    session = _owned_session(request, api_key)
    images_wanted = request.query.get("images", "false")
    if images_wanted not in ("true", "false"):
        raise Problem(422, "invalid_field", "images must be true or false", errors=[{"field": "images", "message": "true or false"}])
    services.lifecycle.expire_if_due(session)
    session = services.store.session(session.id) or session
    images = None
    if images_wanted == "true":
        found = {kind: services.store.evidence(session.id, kind) for kind in (*FACE_IMAGES, *SCENE_KINDS)}
        images = {kind: data for kind, data in found.items() if data is not None}
    merchant = services.store.merchant(api_key.merchant_id)
    settings = services.settings
    # Recorded before it is read, so the export shows its own request in the log.
    services.store.audit(_actor(api_key), "api.session.exported", session.id, {"images": images is not None})
    data = {
        "object": "session_export",
        "generated_at": iso(time.time()),
        "session": session_json(services, session, detail=True),
        "consent": ({**session.consent, "at": iso(session.consent.get("at"))} if session.consent else None),
        "expected": session.expected,
        "merchant": {
            "name": merchant.name if merchant else None,
            "display_name": merchant.display_name if merchant else None,
            "retention": merchant.retention if merchant else None,
            "in_person_url": merchant.in_person_url if merchant else None,
        },
        "retention": {"evidence_days": settings.retention_days, "result_days": settings.result_retention_days},
        "biometric_data": biometric_items(
            [{**item, "stored_at": iso(item["stored_at"])} for item in FaceDataRecords(services.store).inventory(session.id)], images
        ),
        "never_held": list(NOT_HELD),
    }
    return web.json_response(data, headers={"Cache-Control": "no-store"})


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


@routes.post("/api/v1/sessions/{id}/sandbox/complete")
async def sandbox_complete(request: web.Request) -> web.Response:
    """Drive a sandbox session to a final status without a camera (webhook and receipt as for a customer)."""
    api_key = authenticate(request)
    services = request.app[SERVICES]
    if not api_key.sandbox:
        raise Problem(403, "sandbox_only", "only sandbox keys (rn_test_...) may complete a session without a customer")
    session = _owned_session(request, api_key)
    if not session.sandbox:
        raise Problem(403, "sandbox_only", "only sandbox sessions may be completed without a customer")
    body = await _json_object(request)
    wanted = sandbox.completion(body.get("outcome"), body.get("failure_reason"))
    if wanted is None or set(body) - {"outcome", "failure_reason"}:
        message = 'an object with "outcome": one of ' + ", ".join(sandbox.OUTCOMES) + ' and, for "rejected" or "failed", an optional "failure_reason"'
        raise Problem(422, "invalid_fields", "some fields are missing or invalid", errors=[{"field": "outcome", "message": message}])
    session = sandbox.complete(services.lifecycle, session, wanted, _actor(api_key))
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
        "receipt": session.receipt,
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
        bad(unknown[:64], REFUSED_FIELDS.get(unknown, "unknown field; the accepted fields are " + ", ".join(sorted(SESSION_FIELDS))))
    out: dict[str, Any] = {}
    reference_id = body.get("reference_id")
    if isinstance(reference_id, str) and (hidden := invisible_characters(reference_id)):
        bad("reference_id", f"must not contain invisible or direction-changing characters (bidi controls, zero-width, control); found {', '.join(hidden[:5])}")
    elif not isinstance(reference_id, str) or not _clean_text(reference_id, 128):
        bad("reference_id", "required: a string of 1 to 128 printable characters")
    else:
        out["reference_id"] = reference_id
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
