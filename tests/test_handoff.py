"""Desktop to phone over real HTTP: the desktop's QR code and short link, the phone that claims it (and
only it), the desktop that can only follow the check, and the result that says it went `handoff`."""

from __future__ import annotations

import json
import re

import aiohttp
import pytest

from realname_tools.client import CSRF, ClipTrack, HostedFlowClient, load_clip
from server.web.handoff import qr_svg
from tests.support.media import video
from tests.test_live_flow import BLINK_CLIP, BLINK_ID, ready_for_live, session_json

SHORT_LINK = re.compile(r'id="short-link" href="(https?://[^"]+/h/([a-z0-9]{12}))"')


@pytest.fixture(scope="module")
def blink_clip():
    return load_clip(video(BLINK_CLIP))


async def hand_off(http, server) -> tuple[int, str, str | None]:
    """The desktop on its live page asks to continue on a phone: (status, page, short link)."""
    async with http.get(server.make_url("/verify/live")) as response:
        token = CSRF.search(await response.text()).group(1)
    async with http.post(server.make_url("/verify/handoff"), data={"csrf_token": token}, allow_redirects=False) as response:
        page = await response.text()
        if response.status == 200:
            assert response.headers["Cache-Control"] == "no-store"  # the page holds a live link
        found = SHORT_LINK.search(page)
        return response.status, page, found.group(1) if found else None


async def live_config_of(http, server) -> dict | None:
    async with http.get(server.make_url("/verify/live")) as response:
        found = re.search(r'id="live-config">(.*?)</script>', await response.text(), re.S)
    return json.loads(found.group(1)) if found else None


async def status(http, server) -> tuple[int, dict]:
    async with http.get(server.make_url("/verify/handoff/status")) as response:
        return response.status, await response.json()


def test_the_qr_code_is_an_inline_svg_with_nothing_active_in_it():
    svg = qr_svg("https://realname.example/h/abcdefghjkmn")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<script" not in svg and "href" not in svg and "<?xml" not in svg


async def test_the_phone_takes_over_and_the_desktop_follows_to_the_result(http, server, services, sandbox_key, blink_clip):
    created, _desktop = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["blink"])
    code, page, link = await hand_off(http, server)
    assert code == 200 and link and "<svg" in page and 'role="img"' in page
    assert (await status(http, server))[1]["state"] == "waiting"

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as phone_http, aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as stranger:
        phone = HostedFlowClient(phone_http, str(server.make_url("/")))
        assert await phone.open(link) == 303
        # Used once: nobody else gets in with the same link.
        async with stranger.post(link, allow_redirects=False) as response:
            assert response.status == 410
            assert "the first phone that opened it is doing the check" in await response.text()  # says why, not only "go back"
        # The desktop no longer acts on the session; it only follows it.
        async with http.get(server.make_url("/verify/live"), allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/verify/handoff"
        async with http.get(server.make_url("/verify/handoff")) as response:
            page = await response.text()
            assert response.status == 200 and 'id="handoff-status"' in page and "short-link" not in page
        assert await live_config_of(http, server) is None  # no live page for the desktop any more
        async with http.post(server.make_url("/verify/live/offer"), json={"type": "offer", "sdp": "v=0"}) as response:
            assert response.status == 403 and (await response.json())["error"]["code"] == "unknown_session"
        assert (await status(http, server))[1]["state"] == "claimed"

        frames, fps = blink_clip
        run = await phone.start_live(ClipTrack(frames, fps))
        assert run.offer_error is None
        result = await phone.wait_result(run, timeout=30)
        await phone.close()
    assert result is not None and result["status"] == "approved"
    data = await session_json(http, server, sandbox_key, created["id"])
    assert data["status"] == "approved" and data["liveness"]["path"] == "handoff"
    ended = [row["detail"] for row in services.store.audit_for(created["id"]) if row["action"] == "live.ended"]
    assert ended == [{"reason": "completed", "path": "handoff", "connection": "webrtc"}]
    code, progress = await status(http, server)
    assert code == 200 and progress["state"] == "done" and progress["status"] == "approved" and progress["text"]


async def test_a_handoff_needs_the_pages_csrf_token_and_a_session_at_the_live_step(http, server, sandbox_key):
    await ready_for_live(http, server, sandbox_key, BLINK_ID)
    async with http.post(server.make_url("/verify/handoff"), data={"csrf_token": "0" * 64}, allow_redirects=False) as response:
        assert response.status == 403
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as nobody:
        async with nobody.post(server.make_url("/verify/handoff"), allow_redirects=False) as response:
            assert response.status == 403
        async with nobody.get(server.make_url("/verify/handoff/status")) as response:
            assert response.status == 404
        async with nobody.get(server.make_url("/h/abcdefghjkmn")) as response:
            assert response.status == 404


async def test_looking_at_a_handoff_link_uses_nothing(http, server, sandbox_key):
    await ready_for_live(http, server, sandbox_key, BLINK_ID)
    _code, _page, link = await hand_off(http, server)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as robot:
        for _ in range(2):  # a chat app's preview, then the customer
            async with robot.get(link) as response:
                assert response.status == 200 and 'class="start"' in await response.text()
    assert (await status(http, server))[1]["state"] == "waiting"
