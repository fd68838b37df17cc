"""Sandbox completion (issue 29): a sandbox session driven to each final status without a camera, through
the normal lifecycle (the signed webhook to a real local receiver, the signed receipt), refused on live keys."""

from __future__ import annotations

import asyncio
import json
import time

import jwt
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from server.api.auth import create_api_key
from server.webhooks import standard_secret, verify_signature
from tests.support.api import auth

PROBLEM = "application/problem+json"


@pytest.fixture
async def receiver(aiohttp_server):
    requests: list[dict] = []

    async def handle(request: web.Request) -> web.Response:
        requests.append({"headers": dict(request.headers), "body": await request.read()})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    server = await aiohttp_server(app)
    return str(server.make_url("/hook")), requests


async def call(http, server, method, path, key, **kwargs):
    async with http.request(method, server.make_url(path), headers=auth(key), **kwargs) as response:
        return response.status, response.headers, await response.json(content_type=None)


async def create(http, server, key, **body):
    status, _, data = await call(http, server, "POST", "/api/v1/sessions", key, json={"reference_id": "order-9", **body})
    assert status == 201, data
    return data


async def wait_for(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return bool(condition())


@pytest.mark.parametrize(
    ("outcome", "reason", "expected_reason"),
    [("approved", None, None), ("rejected", None, "face_mismatch"), ("review", None, None), ("failed", None, "timeout"), ("failed", "wrong_action", "wrong_action")],
)
async def test_each_outcome_goes_through_the_lifecycle(http, server, services, receiver, outcome, reason, expected_reason):
    url, requests = receiver
    key, secret = create_api_key(services.store, "Sandbox Shop", sandbox=True)
    created = await create(http, server, key, callback_url=url)
    body = {"outcome": outcome} | ({"failure_reason": reason} if reason else {})
    status, _, data = await call(http, server, "POST", f"/api/v1/sessions/{created['id']}/sandbox/complete", key, json=body)
    assert status == 200, data
    assert data["status"] == outcome and data["failure_reason"] == expected_reason and data["sandbox"] is True
    assert data["decision"] == (outcome if outcome != "failed" else None) and data["finished_at"]

    # The webhook the merchant's handler would get, signed both ways.
    assert await wait_for(lambda: len(requests) == 1)
    [request] = requests
    assert verify_signature(secret.encode(), request["headers"]["Realname-Signature"], request["body"])
    event = Webhook(standard_secret(secret.encode())).verify(request["body"], request["headers"])
    assert event["type"] == f"session.{outcome}"
    assert event["data"]["session"]["status"] == outcome and event["data"]["session"]["sandbox"] is True

    # The receipt, signed, says sandbox.
    status, _, jwks = await call(http, server, "GET", "/.well-known/jwks.json", key)
    receipt = event["data"]["session"]["receipt"]
    kid = jwt.get_unverified_header(receipt)["kid"]
    claims = jwt.decode(receipt, jwt.PyJWKSet.from_dict(jwks)[kid].key, algorithms=["EdDSA"], options={"verify_aud": False})
    assert claims["decision"] == outcome and claims["sandbox"] is True and claims["sub"] == created["id"]

    status, _, detail = await call(http, server, "GET", f"/api/v1/sessions/{created['id']}", key)
    actions = [e["action"] for e in detail["events"]]
    assert actions.index("sandbox.completed") < actions.index(f"status.{outcome}")
    walked = [a for a in actions if a.startswith("status.")]
    assert walked == ["status.consented", "status.id_uploaded", "status.live"] + (["status.processing"] if outcome != "failed" else []) + [f"status.{outcome}"]

    # Once final, it stays final.
    again = await call(http, server, "POST", f"/api/v1/sessions/{created['id']}/sandbox/complete", key, json={"outcome": "approved"})
    assert again[0] == 409 and again[2]["code"] == "wrong_state"


async def test_refused_on_live_keys_and_live_sessions(http, server, services, live_key):
    sandbox_key, _ = create_api_key(services.store, "Live Shop", sandbox=True)
    live = await create(http, server, live_key)
    status, headers, problem = await call(http, server, "POST", f"/api/v1/sessions/{live['id']}/sandbox/complete", live_key, json={"outcome": "approved"})
    assert status == 403 and headers["Content-Type"].startswith(PROBLEM) and problem["code"] == "sandbox_only"
    # A sandbox key of the same merchant cannot complete the merchant's live session either.
    status, _, problem = await call(http, server, "POST", f"/api/v1/sessions/{live['id']}/sandbox/complete", sandbox_key, json={"outcome": "approved"})
    assert status == 403 and problem["code"] == "sandbox_only"
    status, _, data = await call(http, server, "GET", f"/api/v1/sessions/{live['id']}", live_key)
    assert data["status"] == "created" and "sandbox.completed" not in [e["action"] for e in data["events"]]


@pytest.mark.parametrize(
    "body",
    [{}, {"outcome": "expired"}, {"outcome": "APPROVED"}, {"outcome": 1}, {"outcome": "review", "failure_reason": "timeout"}, {"outcome": "failed", "failure_reason": "nope"}, {"outcome": "approved", "extra": 1}],
)
async def test_bad_outcomes_are_refused(http, server, sandbox_key, body):
    created = await create(http, server, sandbox_key)
    status, _, problem = await call(http, server, "POST", f"/api/v1/sessions/{created['id']}/sandbox/complete", sandbox_key, json=body)
    assert status == 422 and problem["code"] == "invalid_fields" and problem["errors"][0]["field"] == "outcome"


async def test_other_merchants_sessions_are_not_found(http, server, services, sandbox_key):
    created = await create(http, server, sandbox_key)
    other, _ = create_api_key(services.store, "Other Shop", sandbox=True)
    status, _, problem = await call(http, server, "POST", f"/api/v1/sessions/{created['id']}/sandbox/complete", other, json={"outcome": "approved"})
    assert status == 404 and problem["code"] == "not_found"


async def test_a_redacted_session_cannot_be_completed(http, server, sandbox_key):
    created = await create(http, server, sandbox_key)
    assert (await call(http, server, "DELETE", f"/api/v1/sessions/{created['id']}", sandbox_key))[0] == 200
    status, _, problem = await call(http, server, "POST", f"/api/v1/sessions/{created['id']}/sandbox/complete", sandbox_key, json={"outcome": "approved"})
    assert status == 409 and problem["code"] == "wrong_state"
    assert json.dumps(problem).count("approved") == 0
