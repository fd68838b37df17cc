"""Issue 26, items 3-5, against the real app, its real SQLite file and the real CLI: minimal retention per
merchant, a consent notice that says what actually happens, the face data census and its filing warning,
a person's access export, and the impact assessment report."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import sqlite3

import pytest

from realname_tools.client import ClipTrack, HostedFlowClient
from server.api.auth import create_api_key
from server.cli import main as cli
from server.http.services import SERVICES
from server.privacy.commands import render_report
from server.privacy.modes import Retention
from server.sessions import Status
from server.web.i18n import messages
from tests.attacks.test_storage_attacks import on_disk, share_found
from tests.support.api import auth
from tests.support.console import bring_to_review, make_operator, sign_in
from tests.support.media import PAD_MODELS, photo
from tests.test_live_flow import BLINK_ID, blink_clip, ready_for_live  # noqa: F401 (fixture)

ID_PHOTO = "vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg"
LIVE_PHOTO = "vid_blinkdet_man/frame_t7.0s_eyes_closed.jpg"
SHOP = "Test Shop"  # the sandbox key's merchant


async def call(http, server, method, path, key, **kwargs):
    headers = {**auth(key), **kwargs.pop("headers", {})}
    async with http.request(method, server.make_url(path), headers=headers, allow_redirects=False, **kwargs) as response:
        return response.status, await response.json()


async def session_with_reference(http, server, key, **body) -> dict:
    """A session whose merchant supplied the ID photo: its face crop and template are stored."""
    body.setdefault("reference_id", "customer-26")
    status, created = await call(http, server, "POST", "/api/v1/sessions", key, json=body)
    assert status == 201, created
    status, data = await call(
        http, server, "POST", f"/api/v1/sessions/{created['id']}/reference-photo", key,
        data=photo(ID_PHOTO).read_bytes(), headers={"Content-Type": "image/jpeg"},
    )
    assert status == 200, data
    return created


def set_privacy(services, minimal: bool, url: str | None = None) -> None:
    merchant = services.store.merchant_by_name(SHOP)
    services.store.set_privacy(merchant.id, Retention.MINIMAL if minimal else Retention.STANDARD, url)


def approve(services, session_id: str):
    """What a passed live check leaves (flow/attempts.py `decide`): live face crops and the live template
    stored, then the final move."""
    lifecycle, store = services.lifecycle, services.store
    session = store.session(session_id)
    if session.status == Status.CREATED:
        session = lifecycle.record_consent(session, "en", "consent text", "test")
    session = lifecycle.move(session, Status.LIVE, "system", attempts=1)
    session = lifecycle.move(session, Status.PROCESSING, "system", liveness={"passed": True, "challenges": [], "signals": [], "pad": None})
    live = photo(LIVE_PHOTO).read_bytes()[:20_000]
    for index in range(3):
        store.put_evidence(session_id, f"live_face_{index}", live[index:])
    store.put_evidence(session_id, "live_embedding", store.evidence(session_id, "reference_embedding")[::-1])
    match = {"score": 0.8, "decision": "match", "threshold": 0.3221, "review_threshold": 0.178, "far_band": 0.0001}
    return lifecycle.move(session, Status.APPROVED, "system", match=match)


def biometric_blobs(settings, session_id: str) -> dict[str, bytes]:
    """The sealed crops and templates as they lie in the file, read through a separate connection."""
    db = sqlite3.connect(f"file:{settings.database_path}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT kind, sealed FROM evidence WHERE session_id = ?", (session_id,)).fetchall())
    finally:
        db.close()


# -- item 3: minimal retention ---------------------------------------------------------------------


async def test_minimal_retention_leaves_no_face_bytes_in_the_database_or_its_log(http, server, services, settings, sandbox_key):
    set_privacy(services, minimal=True)
    created = await session_with_reference(http, server, sandbox_key)
    crop = services.store.evidence(created["id"], "reference_face")
    template = services.store.evidence(created["id"], "reference_embedding")
    session = approve(services, created["id"])
    assert session.status == Status.APPROVED and session.receipt
    # Nothing biometric left to read, and no trace of it in the database file or the write-ahead log.
    assert services.store.evidence_kinds(created["id"]) == []
    raw = on_disk(settings.database_path)
    assert len(raw) > 10_000
    assert share_found(crop, raw) == 0 and share_found(template, raw) == 0
    session = services.store.session(created["id"])
    assert session.evidence_purged_at and not session.has_reference and session.receipt  # the receipt stays
    actions = [e["action"] for e in services.store.audit_for(created["id"])]
    assert actions[-1] == "evidence.erased_at_decision" and "status.approved" in actions


async def test_a_real_check_under_minimal_retention_leaves_no_face_bytes_on_disk(http, server, services, settings, sandbox_key, blink_clip):  # noqa: F811
    """The real flow (hosted pages, WebRTC, liveness, PAD, face match) decides; every crop and template
    it sealed, and its plaintext, is then absent from the database file and its write-ahead log."""
    set_privacy(services, minimal=True)
    sealed: list[tuple[str, bytes, bytes]] = []  # (context, plaintext, sealed) of every piece of evidence
    cipher, seal = services.store.cipher, services.store.cipher.seal

    def recording_seal(plaintext: bytes, context: str) -> bytes:
        value = seal(plaintext, context)
        if context.startswith("evidence:"):
            sealed.append((context, plaintext, value))
        return value

    cipher.seal = recording_seal
    try:
        created, customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["blink"])
        run = await customer.start_live(ClipTrack(*blink_clip))
        result = await customer.wait_result(run, timeout=60)
        await customer.close()
    finally:
        del cipher.seal
    assert result is not None and result["status"] == "approved"
    kinds = {context.rsplit(":", 1)[1] for context, _, _ in sealed}
    assert {"reference_face", "reference_embedding", "live_face_0", "live_embedding"} <= kinds
    raw = on_disk(settings.database_path)
    for context, plaintext, value in sealed:
        assert share_found(value, raw) == 0 and share_found(plaintext, raw) == 0, context
    data = (await call(http, server, "GET", f"/api/v1/sessions/{created['id']}", sandbox_key))[1]
    assert data["receipt"] and data["evidence_purged_at"] and data["reference_photo"]["present"] is False
    actions = [event["action"] for event in data["events"]]
    assert actions.index("evidence.erased_at_decision") > actions.index("status.approved")


async def test_minimal_retention_erases_the_sealed_rows_from_every_file(http, server, services, settings, sandbox_key):
    set_privacy(services, minimal=True)
    created = await session_with_reference(http, server, sandbox_key)
    session = services.store.session(created["id"])
    session = services.lifecycle.record_consent(session, "en", "consent text", "test")
    session = services.lifecycle.move(session, Status.LIVE, "system", attempts=1)
    session = services.lifecycle.move(session, Status.PROCESSING, "system")
    for index in range(3):
        services.store.put_evidence(created["id"], f"live_face_{index}", photo(LIVE_PHOTO).read_bytes()[index:30_000])
    services.store.put_evidence(created["id"], "live_embedding", services.store.evidence(created["id"], "reference_embedding")[::-1])
    sealed = biometric_blobs(settings, created["id"])
    assert len(sealed) == 6
    before = on_disk(settings.database_path)
    assert all(share_found(blob, before) > 0.9 for blob in sealed.values())  # the search finds them while they are held
    services.lifecycle.move(session, Status.REJECTED, "system", failure_reason="face_mismatch")
    after = on_disk(settings.database_path)
    for name, blob in sealed.items():
        assert share_found(blob, after) == 0, f"{name} survived the decision"


async def test_minimal_retention_keeps_a_reviews_frames_until_the_operator_decides(http, server, services, settings, sandbox_key):
    set_privacy(services, minimal=True)
    created = await session_with_reference(http, server, sandbox_key)
    session = bring_to_review(services, created["id"], photo(LIVE_PHOTO).read_bytes()[:20_000])
    assert session.status == Status.REVIEW
    assert set(services.store.evidence_kinds(created["id"])) == {"reference_face", "reference_embedding", "live_face_0"}
    sealed = biometric_blobs(settings, created["id"])
    review = {"decided_by": ["alice"], "reason": "same person", "at": 0}
    session = services.lifecycle.settle_review(session, Status.APPROVED, "operator:alice", review)
    assert session.status == Status.APPROVED and session.receipt and session.evidence_purged_at
    assert services.store.evidence_kinds(created["id"]) == []
    after = on_disk(settings.database_path)
    assert all(share_found(blob, after) == 0 for blob in sealed.values())


async def test_standard_retention_keeps_the_evidence_after_the_decision(http, server, services, sandbox_key):
    created = await session_with_reference(http, server, sandbox_key)
    session = approve(services, created["id"])
    assert session.status == Status.APPROVED and session.evidence_purged_at is None
    assert len(services.store.evidence_kinds(created["id"])) == 6
    assert "evidence.erased_at_decision" not in [e["action"] for e in services.store.audit_for(created["id"])]


async def test_an_expired_session_of_a_minimal_merchant_keeps_no_face(http, server, services, sandbox_key):
    set_privacy(services, minimal=True)
    created = await session_with_reference(http, server, sandbox_key)
    services.store.update_session(created["id"], expires_at=0)
    status, data = await call(http, server, "GET", f"/api/v1/sessions/{created['id']}", sandbox_key)
    assert status == 200 and data["status"] == "expired" and data["evidence_purged_at"]
    assert services.store.evidence_kinds(created["id"]) == []


def test_the_cli_sets_the_modes_and_refuses_a_link_that_is_not_https(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REALNAME_DATA_DIR", str(tmp_path / "data"))
    assert cli(["merchants", "create", "acme"]) == 0
    for bad in ("http://shop.example/stores", "javascript:alert(1)", "https://", "https://user:pw@shop.example/"):
        assert cli(["merchants", "set-privacy", "acme", "--in-person-url", bad]) == 2
    capsys.readouterr()
    assert cli(["merchants", "set-privacy", "acme", "--retention", "minimal", "--in-person-url", "https://shop.example/stores", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"name": "acme", "retention": "minimal", "in_person_url": "https://shop.example/stores"}
    assert cli(["merchants", "set-privacy", "acme", "--no-in-person-url", "--json"]) == 0  # the mode stays
    assert json.loads(capsys.readouterr().out) == {"name": "acme", "retention": "minimal", "in_person_url": None}
    assert cli(["merchants", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["retention"] == "minimal" and row["face_data_individuals"] == 0


# -- item 5 (and the consent wording of item 4): the consent says what happens ----------------------------


async def consent_page(http, server, created) -> str:
    flow = HostedFlowClient(http, str(server.make_url("/")))
    await flow.open(created["url"])
    async with http.get(server.make_url("/verify/consent")) as response:
        assert response.status == 200
        return await response.text()


def shown(locale: str, key: str, **values) -> str:
    """The text as the page shows it (HTML-escaped apostrophes)."""
    return messages(locale)[key].format(**values).replace("'", "&#39;")


async def test_consent_for_a_merchant_photo_in_standard_retention(http, server, services, sandbox_key):
    created = await session_with_reference(http, server, sandbox_key)
    page = await consent_page(http, server, created)
    en = messages("en")
    assert shown("en", "consent.step.photo_by_merchant", merchant=SHOP) in page
    assert en["consent.step.photo_by_customer"] not in page  # the customer does not photograph the ID
    assert en["consent.step.recorded"] in page and "never stored" in page  # the recorded fallback, as it is
    assert "never record or store video" not in page
    assert shown("en", "consent.kept.standard", merchant=SHOP, days=30) in page
    assert shown("en", "consent.alternative", merchant=SHOP) in page  # no link set: ask the merchant
    assert await _agree(http, server, page) == 303
    consent = services.store.session(created["id"]).consent
    assert consent["version"] == en["consent.version"]
    for key in ("consent.step.photo_by_merchant", "consent.kept.standard", "consent.face.purpose", "consent.face.withdraw"):
        assert en[key].format(merchant=SHOP, days=30) in consent["text"], key
    # The separate consent names face processing, its purpose, the retention and the right to withdraw.
    assert all(word in consent["text"] for word in ("Face processing", "only to confirm", "deleted after 30 days", "withdraw"))


async def test_consent_for_a_customer_photo_in_minimal_retention_with_a_shop_link_in_chinese(http, server, services, sandbox_key):
    set_privacy(services, minimal=True, url="https://shop.example/stores?city=sh")
    status, created = await call(http, server, "POST", "/api/v1/sessions", sandbox_key, json={"locale": "zh-CN", "reference_id": "customer-cn"})
    assert status == 201
    page = await consent_page(http, server, created)
    zh = messages("zh-CN")
    assert zh["consent.step.photo_by_customer"] in page
    assert zh["consent.kept.minimal"].format(merchant=SHOP) in page and zh["consent.kept.standard"].split("：")[0].format(merchant=SHOP) not in page
    link = re.search(r'<a href="([^"]+)"[^>]*class="in-person">([^<]+)</a>', page)
    assert link and link.group(1) == "https://shop.example/stores?city=sh" and link.group(2) == zh["consent.in_person"]
    assert zh["consent.alternative"].format(merchant=SHOP) not in page
    assert await _agree(http, server, page) == 303
    consent = services.store.session(created["id"]).consent
    assert consent["locale"] == "zh-CN" and zh["consent.kept.minimal"].format(merchant=SHOP) in consent["text"]
    assert zh["consent.face.withdraw"].format(merchant=SHOP) in consent["text"]


async def _agree(http, server, page: str) -> int:
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    async with http.post(server.make_url("/verify/consent"), data={"csrf_token": token, "agree": "yes"}, allow_redirects=False) as response:
        return response.status


# -- item 4: the census and its filing warning, the access export, the impact assessment ------------------


@pytest.fixture
async def low_threshold(aiohttp_server, make_app, settings):
    """The app with a filing threshold of one person, so a test can pass it."""
    return await aiohttp_server(make_app(dataclasses.replace(settings, face_data_filing_threshold=1)))


async def test_the_census_warns_in_health_and_console_past_the_threshold(http, low_threshold):
    server = low_threshold
    services = server.app[SERVICES]
    key, _ = create_api_key(services.store, SHOP, sandbox=True)
    async with http.get(server.make_url("/healthz/details")) as response:
        health = await response.json()
    assert health["face_data"] == {"individuals": 0, "filing_threshold": 1, "filing_required": False} and health["warnings"] == []
    created = await session_with_reference(http, server, key)
    async with http.get(server.make_url("/healthz/details")) as response:
        health = await response.json()
    assert health["status"] == "ok" and health["face_data"]["individuals"] == 1 and health["warnings"] == ["face_data_filing_threshold"]
    make_operator(services, SHOP, "alice")
    assert await sign_in(http, server, SHOP, "alice") == 303
    async with http.get(server.make_url("/console/dashboard")) as response:
        page = await response.text()
    assert 'id="filing-warning"' in page and messages("en")["console.privacy.count"].format(count=1) in page
    # Redaction erases the face data: the person is no longer counted.
    assert (await call(http, server, "DELETE", f"/api/v1/sessions/{created['id']}", key))[0] == 200
    async with http.get(server.make_url("/healthz/details")) as response:
        assert (await response.json())["face_data"]["individuals"] == 0


async def test_the_access_export_describes_the_biometric_data_and_is_audited(http, server, services, sandbox_key, live_key):
    created = await session_with_reference(http, server, sandbox_key, reference_id="passport-E1234567")
    page = await consent_page(http, server, created)
    assert await _agree(http, server, page) == 303
    status, export = await call(http, server, "GET", f"/api/v1/sessions/{created['id']}/export", sandbox_key)
    assert status == 200 and export["object"] == "session_export"
    assert export["session"]["id"] == created["id"] and export["session"]["reference_id"] == "passport-E1234567"
    assert "Face processing" in export["consent"]["text"] and export["merchant"]["retention"] == "standard"
    items = {item["kind"]: item for item in export["biometric_data"]}
    assert set(items) == {"reference_face", "reference_embedding"}
    assert all(len(i["sealed_sha256"]) == 64 and i["sealed_bytes"] > 0 and i["description"] for i in items.values())
    assert not any("image_jpeg_base64" in i for i in items.values())  # described, not dumped
    assert export["never_held"] and export["session"]["events"][-1]["action"] == "api.session.exported"

    status, export = await call(http, server, "GET", f"/api/v1/sessions/{created['id']}/export?images=true", sandbox_key)
    items = {item["kind"]: item for item in export["biometric_data"]}
    assert base64.b64decode(items["reference_face"]["image_jpeg_base64"]) == services.store.evidence(created["id"], "reference_face")
    assert "image_jpeg_base64" not in items["reference_embedding"]  # a template is never handed out
    details = [e["detail"] for e in services.store.audit_for(created["id"]) if e["action"] == "api.session.exported"]
    assert details == [{"images": False}, {"images": True}]

    assert (await call(http, server, "GET", f"/api/v1/sessions/{created['id']}/export?images=yes", sandbox_key))[0] == 422
    assert (await call(http, server, "GET", f"/api/v1/sessions/{created['id']}/export", live_key))[0] == 404  # another merchant
    async with http.get(server.make_url(f"/api/v1/sessions/{created['id']}/export")) as response:
        assert response.status == 401


async def test_the_impact_assessment_comes_from_the_running_configuration(http, server, services, settings, models, sandbox_key, monkeypatch, capsys):
    set_privacy(services, minimal=True, url="https://shop.example/stores")
    await session_with_reference(http, server, sandbox_key)
    markdown = render_report(settings, services.store, models.inventory, "en", "md")
    assert "## What is collected" in markdown and "| Test Shop | minimal | https://shop.example/stores | 1 |" in markdown
    assert "Minimal retention (merchants: Test Shop)" in markdown and "deleted after 30 days" not in markdown
    for model in models.inventory:
        assert model.sha256 in markdown
    # The command itself, in Chinese and as JSON, on the service's data folder.
    monkeypatch.setenv("REALNAME_DATA_DIR", settings.data_dir)
    if models.pad is not None:
        monkeypatch.setenv("REALNAME_PAD_MODEL_DIR", str(PAD_MODELS))
    capsys.readouterr()
    assert cli(["pia-report", "--lang", "zh-CN", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["lang"] == "zh-CN" and report["title"] == messages("zh-CN")["pia.title"]
    assert [s["id"] for s in report["sections"]] == ["purpose", "collected", "flows", "kept", "who", "safeguards", "filing", "outside"]
    assert report["facts"]["merchants"] == [{"name": SHOP, "retention": "minimal", "in_person_url": "https://shop.example/stores", "face_data_individuals": 1}]
    assert report["facts"]["face_data"] == {"individuals": 1, "filing_threshold": 100_000, "filing_required": False}
    assert {m["role"] for m in report["facts"]["models"]} >= {"landmarker", "detector", "embedder"}
    assert report["facts"]["anti_spoofing_loaded"] == (models.pad is not None)
