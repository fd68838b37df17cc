"""The merchant API over real HTTP against the real app on a real SQLite file: create, read, ownership,
every error status, redaction, the reference photo, and evidence encrypted at rest."""

from __future__ import annotations

import io
import json
import time

import aiohttp
import pytest
from PIL import Image

from realname_tools.client import HostedFlowClient
from server.api import auth as api_auth
from server.ratelimit import RateLimiter
from server.web.i18n import messages
from tests.support.api import auth
from tests.support.documents import card_with_face, jpeg
from tests.support.media import photo

ID_PHOTO = "vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg"
NO_FACE = "_no_face/skimage_coffee.png"
TWO_FACES = "_multi_face/fr_two_people.jpg"
PROBLEM = "application/problem+json"


async def call(http, server, method, path, key=None, **kwargs):
    headers = {**(auth(key) if key else {}), **kwargs.pop("headers", {})}
    async with http.request(method, server.make_url(path), headers=headers, allow_redirects=False, **kwargs) as response:
        raw = await response.read()
        body = json.loads(raw) if response.content_type in ("application/json", PROBLEM) else raw.decode(errors="replace")
        return response.status, response.headers, body


async def create(http, server, key, **body):
    body.setdefault("reference_id", "customer-42")
    status, headers, data = await call(http, server, "POST", "/api/v1/sessions", key, json=body)
    assert status == 201, data
    return data


def assert_problem(status, headers, body, expected_status, code=None):
    assert status == expected_status, body
    assert headers["Content-Type"].startswith(PROBLEM), headers["Content-Type"]
    assert body["status"] == expected_status and body["title"] and body["detail"]
    assert body["type"] == f"urn:realname:problem:{body['code']}"
    if code is not None:
        assert body["code"] == code, body


async def put_photo(http, server, key, session_id, data: bytes, content_type="image/jpeg"):
    return await call(
        http, server, "POST", f"/api/v1/sessions/{session_id}/reference-photo", key, data=data, headers={"Content-Type": content_type}
    )


# -- create, read, ownership ------------------------------------------------------------------------


async def test_create_answers_201_with_location_and_a_link_that_works_once(http, server, sandbox_key):
    status, headers, data = await call(
        http, server, "POST", "/api/v1/sessions", sandbox_key, json={"reference_id": "order-1", "locale": "zh", "ttl_s": 600}
    )
    assert status == 201, data
    assert headers["Location"] == f"/api/v1/sessions/{data['id']}"
    assert data["object"] == "session" and data["id"].startswith("ses_")
    assert data["status"] == "created" and data["decision"] is None and data["sandbox"] is True
    assert data["reference_id"] == "order-1" and data["locale"] == "zh-CN"
    assert data["merchant_name"] == "Test Shop"  # the merchant account's display name
    assert data["attempts"] == {"used": 0, "max": 3}
    assert data["reference_photo"] == {"present": False, "source": None}
    assert data["url"].startswith(str(server.make_url("/v/")))
    assert "liveness" not in data  # the summary, not the detail

    # Opening the link (a preview robot, a HEAD) uses nothing; the customer's POST binds the first browser to
    # the session; the same browser may come back, another may not.
    async with http.get(data["url"], allow_redirects=False) as response:
        assert response.status == 200 and "rn_browser" not in response.cookies
    async with http.post(data["url"], allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/verify"
        assert "rn_browser" in response.cookies
    async with http.get(data["url"], allow_redirects=False) as response:
        assert response.status == 303
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        async with other.get(data["url"], allow_redirects=False) as response:
            assert response.status == 410
            assert messages("zh-CN")["link.used.title"] in await response.text()  # in the session's language


async def test_get_returns_the_full_record(http, server, sandbox_key):
    created = await create(http, server, sandbox_key, reference_id="order-2")
    customer = HostedFlowClient(http, str(server.make_url("/")))
    assert await customer.open(created["url"]) == 303
    assert await customer.consent() == 303
    status, _, data = await call(http, server, "GET", f"/api/v1/sessions/{created['id']}", sandbox_key)
    assert status == 200
    assert data["id"] == created["id"] and data["status"] == "consented"
    assert data["liveness"] is None and data["match"] is None and data["live_stats"] is None
    assert data["webhooks"] == []
    consent = data["consent"]
    assert set(consent) == {"version", "locale", "text_sha256", "at"}
    assert consent["locale"] == "en" and len(consent["text_sha256"]) == 64 and consent["at"].endswith("Z")
    actions = [e["action"] for e in data["events"]]
    assert actions[:3] == ["session.created", "link.opened", "status.consented"]
    assert actions[-1] == "api.session.read"
    assert data["events"][0]["actor"].startswith("api_key:rn_test_")


async def test_sessions_of_another_merchant_are_not_found(http, server, services, sandbox_key):
    created = await create(http, server, sandbox_key)
    other, _secret = api_auth.create_api_key(services.store, "Other Shop", sandbox=True)
    for method, path, kwargs in [
        ("GET", f"/api/v1/sessions/{created['id']}", {}),
        ("DELETE", f"/api/v1/sessions/{created['id']}", {}),
        ("POST", f"/api/v1/sessions/{created['id']}/reference-photo", {"data": b"x", "headers": {"Content-Type": "image/jpeg"}}),
    ]:
        assert_problem(*await call(http, server, method, path, other, **kwargs), 404, "not_found")
    # ... and nothing happened to it.
    assert services.store.session(created["id"]).redacted_at is None


async def test_openapi_document_is_served_and_matches_the_routes(http, server):
    status, headers, doc = await call(http, server, "GET", "/api/v1/openapi.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, item in doc["paths"].items() for method in item if method != "parameters"}
    served = {
        (route.resource.canonical, route.method)
        for route in server.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith(("/api/", "/.well-known/")) and route.method != "HEAD"
    }
    assert documented == served
    assert "sessionFinished" in doc["webhooks"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


# -- every error status -----------------------------------------------------------------------------


async def test_400_malformed_json(http, server, sandbox_key):
    for raw in (b"{", b"not json", b"\xff\xfe{}", b"[1, 2]", b'"a string"', b""):
        status, headers, body = await call(
            http, server, "POST", "/api/v1/sessions", sandbox_key, data=raw, headers={"Content-Type": "application/json"}
        )
        assert_problem(status, headers, body, 400, "malformed_json")
        assert body["instance"] == "/api/v1/sessions"


async def test_401_without_a_valid_key(http, server, services, sandbox_key):
    for headers in ({}, {"Authorization": "Bearer rn_test_wrong"}, {"Authorization": f"Basic {sandbox_key}"}, {"Authorization": "Bearer "}):
        status, response_headers, body = await call(http, server, "POST", "/api/v1/sessions", headers=headers, json={"reference_id": "x"})
        assert_problem(status, response_headers, body, 401, "unauthorized")
        assert response_headers["WWW-Authenticate"] == "Bearer"
    # A revoked key stops working at once, for its sessions too.
    created = await create(http, server, sandbox_key)
    assert api_auth.revoke_api_key(services.store, sandbox_key[:14]).key.merchant == "Test Shop"
    assert_problem(*await call(http, server, "GET", f"/api/v1/sessions/{created['id']}", sandbox_key), 401, "unauthorized")


async def test_guessing_keys_is_rate_limited_per_address(http, server):
    statuses = []
    for i in range(12):
        status, headers, body = await call(http, server, "GET", "/api/v1/sessions/ses_x", f"rn_live_guess{i}")
        statuses.append(status)
    assert statuses[:10] == [401] * 10
    assert statuses[-1] == 429
    assert_problem(status, headers, body, 429, "rate_limited")
    assert int(headers["Retry-After"]) >= 1


async def test_403_fixed_challenges_need_a_sandbox_key(http, server, live_key):
    assert_problem(
        *await call(http, server, "POST", "/api/v1/sessions", live_key, json={"reference_id": "x", "fixed_challenges": ["blink"]}),
        403,
        "fixed_challenges_forbidden",
    )
    status, _, data = await call(http, server, "POST", "/api/v1/sessions", live_key, json={"reference_id": "x", "challenges": 2})
    assert status == 201 and data["sandbox"] is False


async def test_404_unknown_sessions_and_routes(http, server, sandbox_key):
    for path in ("/api/v1/sessions/ses_000000000000000000000000", "/api/v1/sessions/" + "a" * 65, "/api/v1/nothing", "/api/v2/sessions"):
        status, headers, body = await call(http, server, "GET", path, sandbox_key)
        assert_problem(status, headers, body, 404, "not_found")
    status, headers, body = await call(http, server, "PUT", "/api/v1/sessions", sandbox_key, json={})
    assert_problem(status, headers, body, 405, "method_not_allowed")
    assert "POST" in headers["Allow"]


async def test_409_reference_photo_once_the_session_is_past_the_id_stage(http, server, services, sandbox_key):
    jpeg = photo(ID_PHOTO).read_bytes()
    expired = await create(http, server, sandbox_key, ttl_s=60)
    services.store.update_session(expired["id"], expires_at=time.time() - 1)
    status, _, data = await call(http, server, "GET", f"/api/v1/sessions/{expired['id']}", sandbox_key)
    assert status == 200 and data["status"] == "expired" and data["finished_at"]
    assert_problem(*await put_photo(http, server, sandbox_key, expired["id"], jpeg), 409, "wrong_state")

    redacted = await create(http, server, sandbox_key)
    assert (await call(http, server, "DELETE", f"/api/v1/sessions/{redacted['id']}", sandbox_key))[0] == 200
    assert_problem(*await put_photo(http, server, sandbox_key, redacted["id"], jpeg), 409, "wrong_state")
    assert services.store.evidence_kinds(expired["id"]) == services.store.evidence_kinds(redacted["id"]) == []


async def test_413_huge_json_body(http, server, sandbox_key):
    body = json.dumps({"reference_id": "x", "merchant_name": "y" * 70_000}).encode()
    assert_problem(
        *await call(http, server, "POST", "/api/v1/sessions", sandbox_key, data=body, headers={"Content-Type": "application/json"}),
        413,
        "too_large",
    )

    async def chunks():  # no Content-Length: the limit holds on the bytes actually read
        for _ in range(20):
            yield b" " * 8192
        yield b"{}"

    assert_problem(
        *await call(http, server, "POST", "/api/v1/sessions", sandbox_key, data=chunks(), headers={"Content-Type": "application/json"}),
        413,
        "too_large",
    )


async def test_413_photo_over_the_upload_limit(http, server, services, sandbox_key):
    services.settings = services.settings.replace(max_upload_bytes=20_000)
    services.lifecycle.settings = services.settings
    created = await create(http, server, sandbox_key)
    jpeg = photo(ID_PHOTO).read_bytes()
    assert len(jpeg) > 20_000
    assert_problem(*await put_photo(http, server, sandbox_key, created["id"], jpeg), 413, "too_large")

    async def chunks():
        for start in range(0, len(jpeg), 4096):
            yield jpeg[start : start + 4096]

    assert_problem(*await put_photo(http, server, sandbox_key, created["id"], chunks()), 413, "too_large")
    assert services.store.evidence_kinds(created["id"]) == []


async def test_415_wrong_content_types(http, server, sandbox_key):
    body = json.dumps({"reference_id": "x"}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/octet-stream", "application/jsonx"):
        assert_problem(
            *await call(http, server, "POST", "/api/v1/sessions", sandbox_key, data=body, headers={"Content-Type": content_type}),
            415,
            "unsupported_media_type",
        )
    created = await create(http, server, sandbox_key)
    jpeg = photo(ID_PHOTO).read_bytes()
    for content_type in ("application/octet-stream", "image/gif", "multipart/form-data; boundary=x", "text/plain"):
        assert_problem(*await put_photo(http, server, sandbox_key, created["id"], jpeg, content_type), 415, "unsupported_media_type")
    png = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).save(png, "PNG")
    assert_problem(*await put_photo(http, server, sandbox_key, created["id"], png.getvalue(), "image/jpeg"), 415, "type_mismatch")
    assert_problem(*await put_photo(http, server, sandbox_key, created["id"], b"GIF89a" + b"\0" * 100, "image/png"), 415, "unsupported_type")


async def test_422_invalid_fields_are_listed(http, server, sandbox_key):
    status, headers, body = await call(
        http,
        server,
        "POST",
        "/api/v1/sessions",
        sandbox_key,
        json={
            "merchant_name": "",
            "callback_url": "ftp://example.com/",
            "redirect_url": "/relative",
            "locale": "fr",
            "challenges": 9,
            "fixed_challenges": [],
            "ttl_s": 10,
            "colour": "blue",
        },
    )
    assert_problem(status, headers, body, 422, "invalid_fields")
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"reference_id", "merchant_name", "callback_url", "redirect_url", "locale", "challenges", "fixed_challenges", "ttl_s", "colour"}
    messages = {e["field"]: e["message"] for e in body["errors"]}
    assert "display name" in messages["merchant_name"] and "accepted fields are" in messages["colour"]
    status, headers, body = await call(
        http, server, "POST", "/api/v1/sessions", sandbox_key, json={"reference_id": "x", "fixed_challenges": ["blink", "juggle"]}
    )
    assert_problem(status, headers, body, 422, "invalid_field")
    assert body["errors"][0]["field"] == "fixed_challenges" and "juggle" in body["errors"][0]["message"]


async def test_422_reference_photo_without_one_face(http, server, services, sandbox_key):
    created = await create(http, server, sandbox_key)
    assert_problem(*await put_photo(http, server, sandbox_key, created["id"], photo(NO_FACE).read_bytes(), "image/png"), 422, "no_face")
    assert_problem(*await put_photo(http, server, sandbox_key, created["id"], photo(TWO_FACES).read_bytes()), 422, "multiple_faces")
    assert_problem(*await put_photo(http, server, sandbox_key, created["id"], b"\xff\xd8\xff\xe0" + b"\0" * 200), 422, "unreadable_image")
    assert_problem(*await put_photo(http, server, sandbox_key, created["id"], b"", "image/jpeg"), 400, "empty_file")
    session = services.store.session(created["id"])
    assert session.status.value == "created" and not session.has_reference
    assert services.store.evidence_kinds(created["id"]) == []


async def test_429_over_the_keys_request_rate(http, server, services, sandbox_key):
    services.api_limiter = RateLimiter(per_minute=2, burst=2)
    created = await create(http, server, sandbox_key)
    assert (await call(http, server, "GET", f"/api/v1/sessions/{created['id']}", sandbox_key))[0] == 200
    status, headers, body = await call(http, server, "GET", f"/api/v1/sessions/{created['id']}", sandbox_key)
    assert_problem(status, headers, body, 429, "rate_limited")
    assert 1 <= int(headers["Retry-After"]) <= 31
    # Another key has its own budget.
    other, _ = api_auth.create_api_key(services.store, "Other Shop", sandbox=True)
    assert (await call(http, server, "POST", "/api/v1/sessions", other, json={"reference_id": "y"}))[0] == 201


# -- the reference photo, redaction, evidence at rest ----------------------------------------------


async def test_reference_photo_moves_a_consented_session_on_and_keeps_only_the_face(http, server, services, sandbox_key):
    created = await create(http, server, sandbox_key)
    customer = HostedFlowClient(http, str(server.make_url("/")))
    assert await customer.open(created["url"]) == 303
    assert await customer.consent() == 303
    jpeg = photo(ID_PHOTO).read_bytes()
    status, _, data = await put_photo(http, server, sandbox_key, created["id"], jpeg)
    assert status == 200, data
    assert data["status"] == "id_uploaded" and data["reference_photo"] == {"present": True, "source": "merchant"}
    assert services.store.evidence_kinds(created["id"]) == ["reference_embedding", "reference_face"]
    face = services.store.evidence(created["id"], "reference_face")
    assert face != jpeg and len(face) < len(jpeg)
    assert Image.open(io.BytesIO(face)).size == (112, 112)  # the aligned face crop, not the photo
    assert len(services.store.evidence(created["id"], "reference_embedding")) == 512 * 4
    # The customer's next step is the live check: the ID-photo step is skipped.
    async with http.get(server.make_url("/verify"), allow_redirects=False) as response:
        assert response.headers["Location"] == "/verify/live"
    # A second photo replaces the first while the session is still before the live check.
    status, _, data = await put_photo(http, server, sandbox_key, created["id"], jpeg)
    assert status == 200 and data["status"] == "id_uploaded"


async def test_reference_photo_before_consent_waits_for_it(http, server, services, sandbox_key):
    created = await create(http, server, sandbox_key)
    status, _, data = await put_photo(http, server, sandbox_key, created["id"], photo(ID_PHOTO).read_bytes())
    assert status == 200 and data["status"] == "created" and data["reference_photo"]["present"]
    customer = HostedFlowClient(http, str(server.make_url("/")))
    assert await customer.open(created["url"]) == 303
    assert await customer.consent() == 303
    assert services.store.session(created["id"]).status.value == "id_uploaded"


async def test_delete_redacts_and_keeps_a_tombstone(http, server, services, sandbox_key):
    created = await create(http, server, sandbox_key, reference_id="person@example.com", callback_url="https://shop.example.com/hook")
    customer = HostedFlowClient(http, str(server.make_url("/")))
    assert await customer.open(created["url"]) == 303
    assert await customer.consent() == 303
    assert (await put_photo(http, server, sandbox_key, created["id"], photo(ID_PHOTO).read_bytes()))[0] == 200
    assert services.store.evidence_kinds(created["id"]) == ["reference_embedding", "reference_face"]

    status, _, tomb = await call(http, server, "DELETE", f"/api/v1/sessions/{created['id']}", sandbox_key)
    assert status == 200, tomb
    assert tomb["id"] == created["id"] and tomb["redacted"] is True and tomb["redacted_at"]
    assert tomb["reference_id"] is None
    assert tomb["status"] == "failed" and tomb["failure_reason"] == "redacted" and tomb["finished_at"]
    assert tomb["reference_photo"]["present"] is False
    assert services.store.evidence_kinds(created["id"]) == []
    stored = services.store.session(created["id"])
    assert stored.reference_id is None and stored.callback_url is None and stored.redirect_url is None
    assert stored.liveness is None and stored.match is None and stored.live_stats is None
    # One webhook confirms the erasure, without the personal data it erased.
    [event] = services.store.webhook_events_for(created["id"])
    assert event["type"] == "session.redacted"
    body = json.loads(event["body"])
    assert body["data"]["session"]["reference_id"] is None and body["data"]["session"]["failure_reason"] == "redacted"

    status, _, detail = await call(http, server, "GET", f"/api/v1/sessions/{created['id']}", sandbox_key)
    assert status == 200 and detail["redacted"] is True and detail["liveness"] is None and detail["match"] is None
    assert "session.redacted" in [e["action"] for e in detail["events"]]
    assert "person@example.com" not in json.dumps(detail)

    status, _, again = await call(http, server, "DELETE", f"/api/v1/sessions/{created['id']}", sandbox_key)
    assert status == 200 and again["redacted_at"] == tomb["redacted_at"] and again["status"] == "failed"
    assert len(services.store.webhook_events_for(created["id"])) == 1

    # The link, and the browser it was bound to, now lead nowhere.
    async with http.get(created["url"], allow_redirects=False) as response:
        assert response.status == 404
        assert "This link is not valid" in await response.text()
    async with http.get(server.make_url("/verify"), allow_redirects=False) as response:
        assert response.status == 403
        assert "This link is not valid" in await response.text()


async def test_delete_of_a_finished_session_keeps_its_outcome(http, server, services, sandbox_key):
    created = await create(http, server, sandbox_key, ttl_s=60)
    services.store.update_session(created["id"], expires_at=time.time() - 1)
    assert services.lifecycle.expire_due() == 1
    status, _, tomb = await call(http, server, "DELETE", f"/api/v1/sessions/{created['id']}", sandbox_key)
    assert status == 200 and tomb["status"] == "expired" and tomb["failure_reason"] is None and tomb["redacted"]
    async with aiohttp.ClientSession() as fresh:
        async with fresh.get(created["url"], allow_redirects=False) as response:
            assert response.status == 404 and "This link is not valid" in await response.text()


async def test_evidence_is_encrypted_at_rest(http, server, services, settings, sandbox_key):
    created = await create(http, server, sandbox_key)
    key, webhook_secret = api_auth.create_api_key(services.store, "Secret Shop", sandbox=True)
    assert (await put_photo(http, server, sandbox_key, created["id"], photo(ID_PHOTO).read_bytes()))[0] == 200
    face = services.store.evidence(created["id"], "reference_face")
    embedding = services.store.evidence(created["id"], "reference_embedding")
    assert face[:3] == b"\xff\xd8\xff"
    database = settings.database_path
    files = [database, database.with_name(database.name + "-wal")]

    def raw() -> bytes:
        return b"".join(path.read_bytes() for path in files if path.exists())

    for when in ("in the write-ahead log", "after a checkpoint"):
        content = raw()
        assert len(content) > 10_000, when
        assert face not in content, when
        assert face[:64] not in content and face[-64:] not in content, when
        assert embedding[:64] not in content, when
        assert webhook_secret.encode() not in content and key.encode() not in content, when
        services.store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    blobs = [row["sealed"] for row in services.store._all("SELECT sealed FROM evidence")]
    assert len(blobs) == 2
    for blob in blobs:
        assert b"\xff\xd8\xff" not in blob


# -- the ID document ---------------------------------------------------------------------------------


async def test_422_malformed_expected_values(http, server, sandbox_key):
    for expected in ("张三", {}, {"name": ""}, {"nickname": "x"}, {"date_of_birth": "1990-13-01"}, {"date_of_birth": "19900101"}, {"id_number": 42}, {"name": "x" * 101}):
        status, headers, body = await call(http, server, "POST", "/api/v1/sessions", sandbox_key, json={"reference_id": "r", "expected": expected})
        assert_problem(status, headers, body, 422, "invalid_fields")
        assert [e["field"] for e in body["errors"]] == ["expected"]


@pytest.mark.reads_documents
async def test_the_reference_documents_fields_and_expected_matches_are_kept_sealed_and_redacted(http, server, services, settings, models, sandbox_key):
    card = card_with_face(models, photo(ID_PHOTO))
    truth = card.truth
    expected = {"name": " ".join(truth["name"]), "id_number": truth["id_number"].lower(), "date_of_birth": "2000-01-01"}
    created = await create(http, server, sandbox_key, expected=expected)
    status, _, data = await put_photo(http, server, sandbox_key, created["id"], jpeg(card.image))
    assert status == 200, data
    status, _, data = await call(http, server, "GET", f"/api/v1/sessions/{created['id']}", sandbox_key)
    document = data["document"]
    assert document["type"] == "cn_resident_card_front" and document["checks_passed"] is True
    assert {name: f["value"] for name, f in document["fields"].items()} == {k: truth[k] for k in ("name", "sex", "date_of_birth", "id_number")}
    assert all(0.5 <= f["confidence"] <= 1 for f in document["fields"].values())
    assert document["expected_matches"] == {"name": True, "id_number": True, "date_of_birth": False}
    assert document["expired"] is None and document["age"] >= 18
    assert "expected" not in data and "address" not in json.dumps(data)
    read = [e for e in data["events"] if e["action"] == "reference.document_read"]
    assert read and read[0]["detail"] == {"type": "cn_resident_card_front", "checks_passed": True}
    services.store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    database = settings.database_path.read_bytes()
    for secret in (truth["id_number"], truth["name"], expected["name"]):
        assert secret.encode() not in database
    status, _, data = await call(http, server, "DELETE", f"/api/v1/sessions/{created['id']}", sandbox_key)
    assert status == 200
    session = services.store.session(created["id"])
    assert session.document is None and session.expected is None
