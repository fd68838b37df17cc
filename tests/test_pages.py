"""The hosted pages driven in-process: single-use links, consent, ID upload errors, CSRF, languages."""

from __future__ import annotations

import re
import time

import aiohttp
import pytest

from realname_tools.client import HostedFlowClient
from realname_tools.id_documents import make_document
from server.sessions import Status
from tests.support.api import auth
from tests.support.documents import card_with_face, jpeg, portrait_of
from tests.support.media import photo

FACE = "vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg"


async def create(http, server, key, **body):
    body.setdefault("reference_id", "customer-7")
    async with http.post(server.make_url("/api/v1/sessions"), json=body, headers=auth(key)) as response:
        assert response.status == 201
        return await response.json()


def customer(http, server) -> HostedFlowClient:
    return HostedFlowClient(http, str(server.make_url("/")))


async def test_link_opens_once_binds_the_browser_and_keeps_the_token_out_of_later_urls(http, server, sandbox_key):
    created = await create(http, server, sandbox_key)
    # A chat app's preview robot (GET) and a HEAD see the start page and use nothing up.
    async with aiohttp.ClientSession() as robot:
        for method in ("GET", "HEAD", "GET"):
            async with robot.request(method, created["url"], allow_redirects=False) as response:
                assert response.status == 200 and "rn_browser" not in response.cookies
    async with http.get(created["url"], allow_redirects=False) as response:
        assert response.status == 200 and 'class="start"' in await response.text()
    async with http.post(created["url"], allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/verify"
        cookie = response.cookies["rn_browser"]
        assert cookie["httponly"] and cookie["samesite"] == "Lax"
    async with http.get(server.make_url("/verify")) as response:
        assert response.url.path == "/verify/consent"
    # The same browser may come back to the link while the check is open; any other browser may not.
    async with http.get(created["url"], allow_redirects=False) as response:
        assert response.status == 303
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as stranger:
        async with stranger.get(created["url"]) as response:
            assert response.status == 410 and "already been used" in await response.text()
        async with stranger.get(server.make_url("/verify/consent")) as response:
            assert response.status == 403


async def test_unknown_and_expired_links(http, server, services, sandbox_key):
    async with http.get(server.make_url("/v/not-a-real-token")) as response:
        assert response.status == 404 and "not valid" in await response.text()
    created = await create(http, server, sandbox_key, ttl_s=60)
    services.store.update_session(created["id"], expires_at=time.time() - 1)
    async with http.get(created["url"]) as response:
        assert response.status == 410 and "expired" in await response.text()
    assert services.store.session(created["id"]).status == Status.EXPIRED


async def test_consent_is_required_and_recorded(http, server, services, sandbox_key):
    created = await create(http, server, sandbox_key)
    flow = customer(http, server)
    await flow.open(created["url"])
    async with http.get(server.make_url("/verify/consent")) as response:
        page = await response.text()
    assert "Test Shop" in page and "30 days" in page and "not recorded or stored as video" in page
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    async with http.post(server.make_url("/verify/consent"), data={"csrf_token": token}) as response:
        assert response.status == 422 and "tick the box" in await response.text()
    assert services.store.session(created["id"]).status == Status.CREATED
    assert await flow.consent() == 303
    session = services.store.session(created["id"])
    assert session.status == Status.CONSENTED
    assert session.consent["locale"] == "en" and session.consent["version"] and "Face processing" in session.consent["text"]
    async with http.get(server.make_url("/verify/consent"), allow_redirects=False) as response:
        assert response.headers["Location"] == "/verify/document"


async def test_forms_need_the_browsers_csrf_token(http, server, sandbox_key):
    created = await create(http, server, sandbox_key)
    await customer(http, server).open(created["url"])
    async with http.post(server.make_url("/verify/consent"), data={"agree": "yes", "csrf_token": "0" * 64}) as response:
        assert response.status == 403


@pytest.mark.parametrize(
    "content, content_type, status, message",
    [
        (b"just text", "text/plain", 415, "not a photo we can use"),
        (b"%PDF-1.7", "application/pdf", 415, "not a photo we can use"),
        (b"\xff\xd8\xff\xe0 broken", "image/jpeg", 422, "could not read"),
    ],
)
async def test_unusable_id_photos_get_clear_messages(http, server, sandbox_key, content, content_type, status, message):
    created = await create(http, server, sandbox_key)
    flow = customer(http, server)
    await flow.open(created["url"])
    await flow.consent()
    code, page = await flow.upload_document(content, content_type)
    assert code == status and message in page
    assert 'capture="environment"' in page and 'accept="image/*"' in page


@pytest.mark.parametrize(
    "name, message",
    [("_no_face/skimage_coffee.png", "could not find a face"), ("_multi_face/fr_two_people.jpg", "more than one face")],
)
async def test_id_photos_without_exactly_one_face(http, server, sandbox_key, name, message):
    created = await create(http, server, sandbox_key)
    flow = customer(http, server)
    await flow.open(created["url"])
    await flow.consent()
    code, page = await flow.upload_document(photo(name).read_bytes(), "image/png" if name.endswith("png") else "image/jpeg")
    assert code == 422 and message in page


async def test_too_large_upload_is_refused_while_reading(http, server, services, sandbox_key):
    created = await create(http, server, sandbox_key)
    flow = customer(http, server)
    await flow.open(created["url"])
    await flow.consent()
    code, page = await flow.upload_document(b"\xff\xd8\xff" + b"0" * (services.settings.max_upload_bytes + 300_000))
    assert code == 413 and "too large" in page


async def test_good_id_photo_leads_to_the_live_page(http, server, services, sandbox_key):
    created = await create(http, server, sandbox_key)
    flow = customer(http, server)
    await flow.open(created["url"])
    await flow.consent()
    code, _ = await flow.upload_document(photo("vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg").read_bytes())
    assert code == 303
    async with http.get(server.make_url("/verify")) as response:
        page = await response.text()
    assert response.url.path == "/verify/live"
    assert 'playsinline' in page and "muted" in page and 'aria-live="assertive"' in page
    assert services.store.evidence_kinds(created["id"]) == ["reference_embedding", "reference_face"]


async def test_chinese_from_the_session_or_the_browser(http, server, sandbox_key):
    created = await create(http, server, sandbox_key, locale="zh-CN")
    await customer(http, server).open(created["url"])
    async with http.get(server.make_url("/verify/consent")) as response:
        page = await response.text()
    assert 'lang="zh-Hans"' in page and "我同意" in page
    async with aiohttp.ClientSession() as browser:
        async with browser.get(server.make_url("/privacy"), headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}) as response:
            assert "隐私说明" in await response.text()
        async with browser.get(server.make_url("/privacy"), headers={"Accept-Language": "fr-FR, en;q=0.5"}) as response:
            assert "Privacy notice" in await response.text()


async def test_strict_headers_everywhere(http, server):
    for path in ("/", "/privacy", "/v/nope", "/api/v1/openapi.json", "/nope"):
        async with http.get(server.make_url(path)) as response:
            csp = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_pages_have_no_inline_script(http, server, sandbox_key):
    created = await create(http, server, sandbox_key)
    flow = customer(http, server)
    await flow.open(created["url"])
    for path in ("/verify/consent", "/privacy", "/"):
        async with http.get(server.make_url(path)) as response:
            html = await response.text()
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag


@pytest.mark.reads_documents
async def test_with_expected_values_the_customer_retakes_a_photo_whose_document_cannot_be_read(http, server, services, models, sandbox_key):
    front = card_with_face(models, photo(FACE), seed=21)
    created = await create(http, server, sandbox_key, expected={"name": front.truth["name"]})
    flow = customer(http, server)
    await flow.open(created["url"])
    await flow.consent()
    code, page = await flow.upload_document(photo(FACE).read_bytes())  # a face, but no document
    assert code == 422 and "could not read your ID document" in page and 'accept="image/*"' in page
    back = make_document("cn_resident_card_back", 3, portrait_of(models, photo(FACE)))
    code, page = await flow.upload_document(jpeg(back.image))
    assert code == 422 and "back of your ID card" in page
    assert services.store.session(created["id"]).status == Status.CONSENTED and not services.store.evidence_kinds(created["id"])
    code, _ = await flow.upload_document(jpeg(front.image))
    assert code == 303
    session = services.store.session(created["id"])
    assert session.status == Status.ID_UPLOADED and session.document["expected_matches"] == {"name": True}


@pytest.mark.reads_documents
async def test_without_expected_values_any_photo_with_a_face_will_do(http, server, services, sandbox_key):
    created = await create(http, server, sandbox_key)
    flow = customer(http, server)
    await flow.open(created["url"])
    await flow.consent()
    code, _ = await flow.upload_document(photo(FACE).read_bytes())
    assert code == 303
    assert services.store.session(created["id"]).document["type"] == "unrecognised"
