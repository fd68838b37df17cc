"""Issue 25, items 8-10, played against the real server: what the service gave away or showed as it was.

8. Static TURN credentials in REALNAME_ICE_SERVERS reach every customer's page: a warning at start-up,
   naming the server and never the secret.
9. /healthz told anyone the live load and capacity: it now says only "ok" and whether the models are ready; the details need the status
   token or a request from the host itself (not one a proxy on the host forwards).
10. A reference with bidi overrides or zero-width characters read as another one in the console: the API
    refuses it (422 `invalid_fields`), and the console writes out those of rows stored before."""

from __future__ import annotations

import logging

import aiohttp
import cv2
import numpy as np
import pytest

from server.api.auth import create_api_key
from server.http.services import SERVICES
from server.invisible import invisible_characters, written_out
from tests.support.api import auth
from tests.support.console import bring_to_review, make_operator, sign_in
from tests.test_handoff import live_config_of
from tests.test_live_flow import BLINK_ID, ready_for_live

TURN_PASSWORD = "Pa55-static-turn-credential"
TURN_USER = "shared-turn-user"
STATUS_TOKEN = "st_0123456789abcdef0123456789abcdef"
FACE = cv2.imencode(".jpg", np.full((112, 112, 3), 128, np.uint8))[1].tobytes()


# -- 8. static TURN credentials ---------------------------------------------------------------------


async def test_static_turn_credentials_are_warned_about_once_without_the_secret(aiohttp_server, make_app, settings, caplog, http):
    caplog.set_level(logging.INFO)
    static = {"urls": ["turns:turn.example.com:443?transport=tcp"], "username": TURN_USER, "credential": TURN_PASSWORD}
    server = await aiohttp_server(make_app(settings.replace(ice_servers=[{"urls": "stun:stun.example.com:3478"}, static])))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "REALNAME_ICE_SERVERS" in r.getMessage()]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "turns:turn.example.com:443" in message and "REALNAME_TURN_SECRET" in message and "stun:" not in message
    assert TURN_PASSWORD not in caplog.text and TURN_USER not in caplog.text
    # What the warning is about: the page of any customer holds them.
    key, _secret = create_api_key(server.app[SERVICES].store, "Turn Shop", sandbox=True)
    await ready_for_live(http, server, key, BLINK_ID)
    config = await live_config_of(http, server)
    assert config is not None and static in config["iceServers"]


async def test_stun_only_or_per_session_turn_is_not_warned_about(aiohttp_server, make_app, settings, caplog):
    caplog.set_level(logging.INFO)
    await aiohttp_server(make_app(settings.replace(ice_servers=[{"urls": "stun:stun.example.com:3478"}], turn_urls=["turn:t.example:3478"], turn_secret="k")))
    assert "REALNAME_ICE_SERVERS" not in caplog.text


# -- 9. /healthz --------------------------------------------------------------------------------------


async def get_json(http, url, **headers) -> tuple[int, dict]:
    async with http.get(url, headers=headers) as response:
        return response.status, await response.json()


@pytest.fixture
async def token_server(aiohttp_server, make_app, settings):
    return await aiohttp_server(make_app(settings.replace(status_token=STATUS_TOKEN, trust_forwarded=True)))


async def test_the_public_probe_says_only_ok_and_ready(server, http):
    for forwarded in ({}, {"X-Forwarded-For": "203.0.113.9"}):
        status, body = await get_json(http, server.make_url("/healthz"), **forwarded)
        assert status == 200 and body == {"status": "ok", "ready": body["ready"]}  # nothing about the load
        assert isinstance(body["ready"], bool)


async def test_the_details_are_for_this_host_and_the_token_only(token_server, http):
    url = token_server.make_url("/healthz/details")
    status, body = await get_json(http, url)  # from this host itself (the bench, a local monitor)
    assert status == 200 and body["live_checks"] == 0 and "capacity_sessions" in body["capacity"]
    # A stranger's request forwarded by a proxy on this host arrives from loopback too: refused.
    for header in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}, {"X-Real-IP": "203.0.113.9"}):
        status, body = await get_json(http, url, **header)
        assert status == 403 and body["error"]["code"] == "forbidden" and "capacity" not in body
    for wrong in ("Bearer nope", f"Bearer {STATUS_TOKEN}x", f"Basic {STATUS_TOKEN}", STATUS_TOKEN):
        status, body = await get_json(http, url, **{"X-Forwarded-For": "203.0.113.9", "Authorization": wrong})
        assert status == 403, wrong
    status, body = await get_json(http, url, **{"X-Forwarded-For": "203.0.113.9", "Authorization": f"Bearer {STATUS_TOKEN}"})
    assert status == 200 and "capacity" in body


async def test_guessing_the_token_is_rate_limited_per_address(aiohttp_server, make_app, settings, http):
    server = await aiohttp_server(make_app(settings.replace(status_token=STATUS_TOKEN, trust_forwarded=True, page_rate_per_minute=20)))
    guesser = {"X-Forwarded-For": "203.0.113.66"}
    statuses = []
    for i in range(15):
        async with http.get(server.make_url("/healthz/details"), headers={**guesser, "Authorization": f"Bearer guess{i}"}) as response:
            statuses.append(response.status)
    assert set(statuses) == {403, 429} and statuses[-1] == 429
    assert (await get_json(http, server.make_url("/healthz"), **guesser))[0] == 200  # the public probe is never limited


async def test_without_a_token_no_forwarded_request_reads_the_details(server, http):
    status, _body = await get_json(http, server.make_url("/healthz/details"), **{"X-Forwarded-For": "127.0.0.1", "Authorization": "Bearer "})
    assert status == 403


# -- 10. invisible characters in reference_id -----------------------------------------------------------

HIDDEN = [
    "order-\u202e7331",  # RIGHT-TO-LEFT OVERRIDE: shows as "order-1337"
    "order-\u2066x\u2069",  # an isolate
    "order\u200b-1",  # ZERO WIDTH SPACE
    "order\u200d-1",  # ZERO WIDTH JOINER
    "\ufefforder-1",  # BYTE ORDER MARK
    "order-\u061c1",  # ARABIC LETTER MARK
    "order-\u200f1",  # RIGHT-TO-LEFT MARK
]


@pytest.mark.parametrize("reference", HIDDEN)
async def test_the_api_refuses_invisible_characters_in_reference_id(server, http, sandbox_key, reference):
    async with http.post(server.make_url("/api/v1/sessions"), json={"reference_id": reference}, headers=auth(sandbox_key)) as response:
        assert response.status == 422 and response.content_type == "application/problem+json"
        problem = await response.json()
    assert problem["code"] == "invalid_fields"
    [error] = problem["errors"]
    assert error["field"] == "reference_id" and "invisible" in error["message"] and invisible_characters(reference)[0] in error["message"]


async def test_visible_unicode_references_are_still_accepted(server, http, sandbox_key):
    for reference in ("订单-1337", "commande-éà", "طلب-7"):
        async with http.post(server.make_url("/api/v1/sessions"), json={"reference_id": reference}, headers=auth(sandbox_key)) as response:
            assert response.status == 201, reference


async def test_the_console_writes_out_invisible_characters_of_old_rows(server, http, services):
    key, _secret = create_api_key(services.store, "acme", sandbox=True)
    async with http.post(server.make_url("/api/v1/sessions"), json={"reference_id": "order-1"}, headers=auth(key)) as response:
        created = await response.json()
    stored = "order-\u202e7331"  # as a row from before the check holds it
    services.store.update_session(created["id"], reference_id=stored)
    bring_to_review(services, created["id"], FACE)
    make_operator(services, "acme", "alice")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as console:
        assert await sign_in(console, server, "acme", "alice") == 303
        for path in ("/console/review", f"/console/sessions?reference={stored}", f"/console/sessions/{created['id']}"):
            async with console.get(server.make_url(path)) as response:
                page = await response.text()
            assert response.status == 200 and created["id"] in page, path
            assert "<td>order-&lt;U+202E&gt;7331</td>" in page or "<dd>order-&lt;U+202E&gt;7331</dd>" in page, path
            # Only the search box holds the operator's own query as typed (so that it searches again).
            assert page.count("\u202e") == (1 if "reference=" in path else 0), path


def test_written_out_leaves_visible_text_alone():
    assert written_out("订单-1337 é") == "订单-1337 é"
    assert written_out("a\u200bb\u0007") == "a<U+200B>b<U+0007>"
    assert written_out(None) == ""
