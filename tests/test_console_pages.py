"""The operator console driven in-process through the real app on a real SQLite file: sign-in with CSRF
and lockouts, merchant isolation (404), roles, evidence served with no-store, and a review decision that
moves the session through Lifecycle and sends the signed webhook naming the operator."""

from __future__ import annotations

import json
import time

import aiohttp
import cv2
import numpy as np
import pytest
from aiohttp import web

from server.api.auth import create_api_key
from server.cli import _store
from server.cli import main as cli
from server.config import load_settings
from server.http.services import SERVICES
from server.operators import totp
from server.operators.signin import account_key
from server.sessions import Status
from server.storage.backoffs import Backoffs
from server.webhooks import SIGNATURE_HEADER, verify_signature
from tests.support.api import auth
from tests.support.console import PASSWORD, bring_to_review, csrf_of, make_operator, page_csrf, sign_in
from tests.support.waiting import eventually

FACE = cv2.imencode(".jpg", np.full((112, 112, 3), 128, np.uint8))[1].tobytes()


def browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def create_session(http, server, key: str, **body) -> dict:
    body.setdefault("reference_id", "order-16")
    async with http.post(server.make_url("/api/v1/sessions"), json=body, headers=auth(key)) as response:
        assert response.status == 201
        return await response.json()


@pytest.fixture
def acme(services):
    key, secret = create_api_key(services.store, "acme", sandbox=True)
    return key, secret


async def test_sign_in_sets_a_strict_cookie_and_only_a_hash_is_stored(http, server, services):
    make_operator(services, "acme", "alice")
    async with http.get(server.make_url("/console/review"), allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/console/signin"
    async with http.get(server.make_url("/console/signin")) as response:
        page = await response.text()
        assert response.headers["Cache-Control"] == "no-store"
    assert 'autocomplete="current-password"' in page and 'for="password"' in page
    form = {"csrf_token": csrf_of(page), "merchant": "acme", "name": "alice", "password": PASSWORD}
    async with http.post(server.make_url("/console/signin"), data=form, allow_redirects=False) as response:
        assert response.status == 303
        cookie = response.cookies["rn_operator"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/console"
    rows = services.store._all("SELECT token_hash FROM operator_sessions")
    assert len(rows) == 1 and rows[0]["token_hash"] != cookie.value and len(rows[0]["token_hash"]) == 64
    async with http.get(server.make_url("/console/review")) as response:
        assert response.status == 200 and "No session is waiting for review." in await response.text()
    # Signing out ends the session on the server, not only in the browser.
    token = await page_csrf(http, server, "/console/review")
    async with http.post(server.make_url("/console/signout"), data={"csrf_token": token}, allow_redirects=False) as response:
        assert response.status == 303
    assert services.store._all("SELECT token_hash FROM operator_sessions") == []
    async with browser() as thief:
        thief.cookie_jar.update_cookies({"rn_operator": cookie.value}, response_url=server.make_url("/console"))
        async with thief.get(server.make_url("/console/review"), allow_redirects=False) as response:
            assert response.status == 303


async def test_sign_in_without_the_csrf_token_is_refused(http, server, services):
    make_operator(services, "acme", "alice")
    await page_csrf(http, server, "/console/signin")
    form = {"merchant": "acme", "name": "alice", "password": PASSWORD}
    async with http.post(server.make_url("/console/signin"), data=form, allow_redirects=False) as response:
        assert response.status == 403
    async with http.post(server.make_url("/console/signin"), data={**form, "csrf_token": "0" * 64}, allow_redirects=False) as response:
        assert response.status == 403


async def test_wrong_passwords_delay_the_account_and_the_right_one_passes_after_the_delay(http, server, services):
    make_operator(services, "acme", "alice")
    limit = services.settings.console_max_failures
    statuses = [await sign_in(http, server, "acme", "alice", "wrong password!") for _ in range(limit)]
    assert statuses == [401] * limit
    assert await sign_in(http, server, "acme", "alice") == 401  # the right password, during the delay
    events = [e["action"] for e in services.store._all("SELECT action FROM audit_log WHERE action LIKE 'console.signin%'")]
    assert events.count("console.signin_failed") == limit and "console.signin_refused" in events
    assert await sign_in(http, server, "acme", "nobody") == 401  # an unknown name gets the same answer
    # Once the delay is over, the right password passes.
    services.store._write("UPDATE failure_counts SET paused_until = 0")
    assert await sign_in(http, server, "acme", "alice") == 303


async def test_guessing_across_accounts_delays_the_client_address(http, server, services):
    limit = services.settings.console_max_failures
    for index in range(limit * 2):
        make_operator(services, "acme", f"user{index}")
    statuses = [await sign_in(http, server, "acme", f"user{index}", "wrong password!") for index in range(limit * 2)]
    assert statuses == [401] * (limit * 2)
    make_operator(services, "acme", "carol")
    assert await sign_in(http, server, "acme", "carol") == 401  # the address waits, whatever the account


async def test_totp_is_required_once_enabled_and_a_code_works_once(http, server, services):
    operator = make_operator(services, "acme", "alice")
    secret = totp.new_secret()
    services.operators.set_totp(operator.id, secret)
    assert await sign_in(http, server, "acme", "alice") == 401
    code = totp.code_at(secret, time.time())
    assert await sign_in(http, server, "acme", "alice", code=code) == 303
    async with browser() as other:
        assert await sign_in(other, server, "acme", "alice", code=code) == 401  # replayed


async def test_operators_see_only_their_merchants_sessions(http, server, services, acme):
    created = await create_session(http, server, acme[0])
    bring_to_review(services, created["id"], FACE)
    make_operator(services, "acme", "alice")
    make_operator(services, "zeta", "zed", role="admin")
    assert await sign_in(http, server, "zeta", "zed") == 303
    for path in (f"/console/sessions/{created['id']}", f"/console/sessions/{created['id']}/evidence/reference_face"):
        async with http.get(server.make_url(path)) as response:
            assert response.status == 404
    async with http.get(server.make_url("/console/review")) as response:
        assert created["id"] not in await response.text()
    async with http.get(server.make_url("/console/sessions?reference=order-16")) as response:
        assert created["id"] not in await response.text()
    token = await page_csrf(http, server, "/console/review")
    for action, form in (("decision", {"decision": "approved", "reason": "looks fine"}), ("redact", {"confirm": "yes"})):
        async with http.post(server.make_url(f"/console/sessions/{created['id']}/{action}"), data={**form, "csrf_token": token}) as response:
            assert response.status == 404
    assert services.store.session(created["id"]).status == Status.REVIEW


async def test_evidence_is_served_to_the_merchants_operator_with_no_store(http, server, services, acme):
    created = await create_session(http, server, acme[0])
    bring_to_review(services, created["id"], FACE)
    make_operator(services, "acme", "alice")
    async with http.get(server.make_url(f"/console/sessions/{created['id']}/evidence/reference_face"), allow_redirects=False) as response:
        assert response.status == 303  # not signed in
    assert await sign_in(http, server, "acme", "alice") == 303
    async with http.get(server.make_url(f"/console/sessions/{created['id']}")) as response:
        page = await response.text()
    assert "evidence/reference_face" in page and "evidence/live_face_0" in page and "0.29" in page
    async with http.get(server.make_url(f"/console/sessions/{created['id']}/evidence/reference_face")) as response:
        assert response.status == 200 and await response.read() == FACE
        assert response.headers["Content-Type"] == "image/jpeg" and "no-store" in response.headers["Cache-Control"]
    for kind in ("reference_embedding", "live_face_9", "..%2Fsecret"):
        async with http.get(server.make_url(f"/console/sessions/{created['id']}/evidence/{kind}")) as response:
            assert response.status == 404
    actions = [e["action"] for e in services.store.audit_for(created["id"])]
    assert "console.session_viewed" in actions and "console.evidence_viewed" in actions


async def test_the_document_read_from_the_id_photo_is_shown_to_the_reviewer(http, server, services, acme):
    created = await create_session(http, server, acme[0])
    bring_to_review(services, created["id"], FACE)
    document = {
        "type": "cn_resident_card_front",
        "fields": {"name": {"value": "王小明", "confidence": 0.98}, "id_number": {"value": "11010519491231002X", "confidence": 0.97}},
        "checks": [{"code": "id_number_check_character", "passed": True}],
        "checks_passed": True,
        "expired": None,
        "age": 76,
        "expected_matches": {"name": True, "id_number": False},
    }
    services.store.update_session(created["id"], document=document)
    make_operator(services, "acme", "alice")
    assert await sign_in(http, server, "acme", "alice") == 303
    async with http.get(server.make_url(f"/console/sessions/{created['id']}")) as response:
        page = await response.text()
    assert "cn_resident_card_front" in page and "王小明" in page and "11010519491231002X" in page
    assert "id_number_check_character" in page and "id_number ✘" in page


async def test_a_merchant_polling_the_api_does_not_flood_the_events(http, server, services, acme):
    created = await create_session(http, server, acme[0])
    for _ in range(6):
        async with http.get(server.make_url(f"/api/v1/sessions/{created['id']}"), headers=auth(acme[0])) as response:
            assert response.status == 200
    services.lifecycle.record_consent(services.store.session(created["id"]), "en", "consent text", "test")
    async with http.get(server.make_url(f"/api/v1/sessions/{created['id']}"), headers=auth(acme[0])) as response:
        assert response.status == 200
    make_operator(services, "acme", "alice")
    assert await sign_in(http, server, "acme", "alice") == 303
    async with http.get(server.make_url(f"/console/sessions/{created['id']}")) as response:
        page = await response.text()
    events = page.split('class="data events"')[1]
    assert events.count("api.session.read") == 2  # six reads in a row, one row; then the one after consent
    assert 'data-repeated="6"' in events and "×6, the last at" in events
    assert events.index("session.created") < events.index("api.session.read") < events.index("status.consented")
    assert len([e for e in services.store.audit_for(created["id"]) if e["action"] == "api.session.read"]) == 7  # the log keeps each


async def test_codes_are_shown_in_words_with_the_code_beside_them_in_both_languages(http, server, services, acme):
    created = await create_session(http, server, acme[0])
    session = bring_to_review(services, created["id"], FACE)
    signal = {"code": "pad_uncertain", "level": "elevated", "detail": None, "action": "review"}
    liveness = {**session.liveness, "challenges": [{"type": "turn_left", "asked_at_s": 1.0, "completed_at_s": 2.5, "passed": True}],
                "signals": [signal], "pad": {"verdict": "review", "score": 0.55}, "review_because": ["pad_uncertain"]}
    document = {"type": "cn_resident_card_front", "fields": {}, "checks": [{"code": "id_number_check_character", "passed": False}],
                "checks_passed": False, "expired": None, "age": None, "expected_matches": {}}
    services.store.update_session(created["id"], liveness=liveness, document=document)
    make_operator(services, "acme", "alice")
    assert await sign_in(http, server, "acme", "alice") == 303
    for lang, texts in (
        ("en", ("Anti-spoofing: an uncertain score (a person should look)", "ID number check character (ISO 7064)", "Turn your head to your left")),
        ("zh-CN", ("防伪检测：分数不确定（需人工查看）", "身份证号码校验码（ISO 7064）", "请向您的左侧转头")),
    ):
        async with http.get(server.make_url(f"/console/sessions/{created['id']}?lang={lang}")) as response:
            page = await response.text()
        for text in texts:
            assert text in page, (lang, text)
        for code in ("pad_uncertain", "id_number_check_character", "turn_left"):
            assert f"(<code>{code}</code>)" in page


async def test_approving_moves_the_session_and_sends_the_webhook_with_the_operator(aiohttp_server, http, server, services, acme):
    received: list[tuple[dict, bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    merchant_site = await aiohttp_server(receiver)
    created = await create_session(http, server, acme[0], callback_url=str(merchant_site.make_url("/hook")))
    bring_to_review(services, created["id"], FACE)
    await eventually(lambda: len(received) == 1)  # the session.review event
    make_operator(services, "acme", "alice")
    assert await sign_in(http, server, "acme", "alice") == 303
    async with http.get(server.make_url("/console/review")) as response:
        assert created["id"] in await response.text()
    token = await page_csrf(http, server, f"/console/sessions/{created['id']}")
    path = server.make_url(f"/console/sessions/{created['id']}/decision")
    async with http.post(path, data={"decision": "approved", "reason": "same person"}) as response:
        assert response.status == 403  # no CSRF token
    async with http.post(path, data={"csrf_token": token, "decision": "approved", "reason": "  "}) as response:
        assert response.status == 422
    async with http.post(path, data={"csrf_token": token, "decision": "approved", "reason": "Same person, clear photo"}) as response:
        assert response.status == 200 and "The decision is recorded" in await response.text()
    session = services.store.session(created["id"])
    assert session.status == Status.APPROVED and session.review["decided_by"] == ["alice"]
    await eventually(lambda: len(received) == 2)
    headers, body = received[1]
    assert verify_signature(acme[1].encode(), headers[SIGNATURE_HEADER], body)
    event = json.loads(body)
    assert event["type"] == "session.approved"
    assert event["data"]["session"]["review"]["decision"] == "approved"
    assert event["data"]["session"]["review"]["decided_by"] == ["alice"] and event["data"]["session"]["review"]["reason"] == "Same person, clear photo"
    # A second decision finds nothing to decide.
    async with http.post(path, data={"csrf_token": token, "decision": "rejected", "reason": "changed my mind"}) as response:
        assert response.status == 409
    actions = [(e["actor"], e["action"]) for e in services.store.audit_for(created["id"])]
    assert ("operator:acme/alice", "status.approved") in actions and ("operator:acme/alice", "review.approved") in actions
    # The merchant's API tells the same.
    async with http.get(server.make_url(f"/api/v1/sessions/{created['id']}"), headers=auth(acme[0])) as response:
        assert (await response.json())["review"]["decided_by"] == ["alice"]


async def test_rejecting_records_the_reason_code(http, server, services, acme):
    created = await create_session(http, server, acme[0])
    bring_to_review(services, created["id"], FACE)
    make_operator(services, "acme", "alice")
    assert await sign_in(http, server, "acme", "alice") == 303
    token = await page_csrf(http, server, f"/console/sessions/{created['id']}")
    form = {"csrf_token": token, "decision": "rejected", "reason": "not the person on the ID"}
    async with http.post(server.make_url(f"/console/sessions/{created['id']}/decision"), data=form) as response:
        assert response.status == 200
    session = services.store.session(created["id"])
    assert session.status == Status.REJECTED and session.failure_reason == "rejected_in_review"


async def test_four_eyes_needs_a_second_operator_who_agrees(aiohttp_server, make_app, settings):
    app = make_app(settings.replace(console_four_eyes=True))
    server = await aiohttp_server(app)
    services = server.app[SERVICES]
    key, _ = create_api_key(services.store, "acme", sandbox=True)
    async with browser() as alice, browser() as bob:
        created = await create_session(alice, server, key)
        bring_to_review(services, created["id"], FACE)
        make_operator(services, "acme", "alice")
        make_operator(services, "acme", "bob")
        path = server.make_url(f"/console/sessions/{created['id']}/decision")
        assert await sign_in(alice, server, "acme", "alice") == 303
        token = await page_csrf(alice, server, f"/console/sessions/{created['id']}")
        async with alice.post(path, data={"csrf_token": token, "decision": "approved", "reason": "fine"}) as response:
            assert "a second operator must agree" in await response.text()
        assert services.store.session(created["id"]).status == Status.REVIEW
        async with alice.post(path, data={"csrf_token": token, "decision": "approved", "reason": "fine again"}) as response:
            assert response.status == 409  # the same operator cannot be the second pair of eyes
        assert await sign_in(bob, server, "acme", "bob") == 303
        token = await page_csrf(bob, server, f"/console/sessions/{created['id']}")
        async with bob.post(path, data={"csrf_token": token, "decision": "approved", "reason": "agree"}) as response:
            assert response.status == 200
        session = services.store.session(created["id"])
        assert session.status == Status.APPROVED and session.review["decided_by"] == ["alice", "bob"]


async def test_a_reviewer_cannot_redact_an_admin_can_after_confirming(http, server, services, acme):
    created = await create_session(http, server, acme[0])
    bring_to_review(services, created["id"], FACE)
    make_operator(services, "acme", "alice")
    make_operator(services, "acme", "root", role="admin")
    path = server.make_url(f"/console/sessions/{created['id']}/redact")
    assert await sign_in(http, server, "acme", "alice") == 303
    token = await page_csrf(http, server, f"/console/sessions/{created['id']}")
    async with http.post(path, data={"csrf_token": token, "confirm": "yes"}) as response:
        assert response.status == 403
    assert services.store.session(created["id"]).redacted_at is None
    async with browser() as admin:
        assert await sign_in(admin, server, "acme", "root") == 303
        token = await page_csrf(admin, server, f"/console/sessions/{created['id']}")
        async with admin.post(path, data={"csrf_token": token}) as response:
            assert response.status == 422  # not confirmed
        async with admin.post(path, data={"csrf_token": token, "confirm": "yes"}) as response:
            assert response.status == 200
    session = services.store.session(created["id"])
    assert session.redacted_at is not None and services.store.evidence_kinds(created["id"]) == []


async def test_search_by_reference_status_and_date(http, server, services, acme):
    first = await create_session(http, server, acme[0], reference_id="order-A")
    second = await create_session(http, server, acme[0], reference_id="order-B")
    bring_to_review(services, second["id"], FACE)
    make_operator(services, "acme", "alice")
    assert await sign_in(http, server, "acme", "alice") == 303

    async def found(query: str) -> set[str]:
        async with http.get(server.make_url(f"/console/sessions?{query}")) as response:
            page = await response.text()
        return {s for s in (first["id"], second["id"]) if f">{s}<" in page}

    assert await found("") == {first["id"], second["id"]}
    assert await found("reference=order-A") == {first["id"]}
    assert await found("status=review") == {second["id"]}
    assert await found("reference=order-A&status=review") == set()
    assert await found("from=2000-01-01&to=2000-01-02") == set()
    searched = services.store._all("SELECT detail FROM audit_log WHERE action = 'console.sessions_searched'")
    assert searched and all("order-" not in (row["detail"] or "") for row in searched)  # the reference is not logged


async def test_dashboard_counts_match_the_database_and_export_as_csv(http, server, services, acme):
    for _ in range(2):
        await create_session(http, server, acme[0])
    reviewed = await create_session(http, server, acme[0])
    bring_to_review(services, reviewed["id"], FACE)
    make_operator(services, "acme", "alice")
    assert await sign_in(http, server, "acme", "alice") == 303
    async with http.get(server.make_url("/console/dashboard")) as response:
        page = await response.text()
    assert response.status == 200 and "<svg" in page
    assert 'data-total="created">3<' in page and 'data-total="consented">1<' in page and 'data-total="finished">1<' in page
    assert 'data-total="approved">0<' in page
    assert 'data-legend="created"' in page and 'data-legend="approved"' in page  # the per-day chart says which column is which
    async with http.get(server.make_url("/console/dashboard.csv")) as response:
        assert response.headers["Content-Type"].startswith("text/csv")
        lines = (await response.text()).splitlines()
    assert lines[0] == "day,created,link_opened,consented,id_uploaded,live_started,finished,approved"
    assert lines[-1] == "total,3,1,1,1,1,1,0"


def test_cli_creates_operators_without_a_password_on_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REALNAME_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REALNAME_EVIDENCE_KEY_FILE", str(tmp_path / "keys" / "evidence.key"))
    assert cli(["merchants", "create", "acme"]) == 0
    secret_file = tmp_path / "pw"
    secret_file.write_text("a long enough password\n")
    assert cli(["operators", "create", "--merchant", "acme", "--name", "alice", "--role", "admin", "--password-file", str(secret_file)]) == 0
    secret_file.write_text("short\n")
    assert cli(["operators", "create", "--merchant", "acme", "--name", "bob", "--password-file", str(secret_file)]) == 2
    capsys.readouterr()
    assert cli(["operators", "totp-enable", "--merchant", "acme", "--name", "alice", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["otpauth_uri"].startswith("otpauth://totp/Realname%3Aacme%2Falice?secret=")
    assert cli(["operators", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"merchant": "acme", "name": "alice", "role": "admin", "totp": True, "disabled": False}]
    # There is no way to give the password itself as an argument: what follows is a file's path.
    assert cli(["operators", "create", "--merchant", "acme", "--name", "carol", "--password-file", "a long enough password"]) == 2
    # `operators unlock` lifts the account's delay (counted in the database).
    store = _store(load_settings())
    delays = Backoffs(store)
    for _ in range(60):
        delays.record_failure(account_key("acme", "alice"), lambda failures: 30.0 if failures >= 50 else 0.0, 900.0)
    assert delays.paused_for(account_key("acme", "alice")) > 0
    assert cli(["operators", "unlock", "--merchant", "acme", "--name", "alice"]) == 0
    assert delays.paused_for(account_key("acme", "alice")) == 0
    store.close()


async def test_the_console_speaks_chinese(http, server, services):
    make_operator(services, "acme", "alice")
    async with http.get(server.make_url("/console/signin?lang=zh-CN")) as response:
        page = await response.text()
    assert '<html lang="zh-Hans">' in page and "商户账号" in page and "登录" in page
    assert await sign_in(http, server, "acme", "alice") == 303
    async with http.get(server.make_url("/console/dashboard")) as response:
        page = await response.text()
    assert "验证情况" in page and "转化漏斗" in page
