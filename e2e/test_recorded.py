"""The recorded fallback in a real Chromium whose WebRTC is missing or blocked: the page records the check
with MediaRecorder while it shows the server's prompts on the server's timetable, and uploads it. The
genuine face is approved with `path: recorded`; a replay on a monitor is not approved."""

from __future__ import annotations

import pytest

from e2e.conftest import BLINK_ID, HEADTURN_ID, phone_context
from e2e.support.flow import FORCE_RELAY, NO_WEBRTC, at, walk_to_live, watch_live_text
from tests.support.media import pad_model_dir, photo

pytestmark = [pytest.mark.e2e, pytest.mark.media]

RESULT_TIMEOUT_MS = 90_000


async def recorded_check(launch, camera, merchant, challenges: list[str], id_photo: str, script: str, shot=None) -> tuple[dict, list[str]]:
    created = await merchant.create_session(fixed_challenges=challenges)
    context = await phone_context(await launch(camera))
    await context.add_init_script(script)
    said = await watch_live_text(context)
    page = await context.new_page()
    await walk_to_live(page, created["url"], photo(id_photo))
    await page.locator("#start").click()
    if script == FORCE_RELAY:  # relay only and no TURN server: the peer never connects
        await page.locator("#record").wait_for(state="visible", timeout=30_000)
        if shot:
            await shot(page, "offer-to-record")
        await page.locator("#record").click()
    badge = page.locator("#recording")  # the customer sees that the camera is being recorded
    await badge.wait_for(state="visible", timeout=30_000)
    assert await badge.get_attribute("role") == "status" and await page.locator("body[data-recording='on']").count() == 1
    if shot:
        await shot(page, "recording")
    await page.wait_for_url(at("/verify/result"), timeout=RESULT_TIMEOUT_MS)
    return await merchant.session(created["id"]), said.texts()


async def test_without_webrtc_the_check_is_recorded_and_approved(launch, blink_camera, merchant, shot):
    data, said = await recorded_check(launch, blink_camera, merchant, ["blink"], BLINK_ID, NO_WEBRTC, shot)
    assert data["status"] == "approved", (data["failure_reason"], data["liveness"])
    assert data["liveness"]["path"] == "recorded"
    assert "Look straight at the camera" in said and "Blink your eyes" in said  # the prompts, in order
    assert said.index("Blink your eyes") > said.index("Look straight at the camera")


async def test_when_the_peer_cannot_connect_the_page_offers_to_record(launch, blink_camera, merchant, shot):
    data, _said = await recorded_check(launch, blink_camera, merchant, ["blink"], BLINK_ID, FORCE_RELAY, shot)
    assert data["status"] == "approved", (data["failure_reason"], data["liveness"])
    assert data["liveness"]["path"] == "recorded"
    assert data["attempts"]["used"] == 1, [e["detail"] for e in data["events"] if e["action"] == "live.ended"]  # the live attempt that never connected was given back


async def test_a_recorded_replay_is_not_approved(launch, replay_camera, merchant):
    pad_model_dir()
    data, _said = await recorded_check(launch, replay_camera, merchant, ["turn_left"], HEADTURN_ID, NO_WEBRTC)
    assert data["status"] != "approved" and data["decision"] is None
    assert data["failure_reason"] in ("presentation_attack", "off_schedule", "wrong_action", "timeout"), data["liveness"]
    assert data["liveness"]["path"] == "recorded"
