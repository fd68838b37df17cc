"""The light gate on the live path (server/liveness/light.py): the real app, a real WebRTC peer, real models.

A genuine clip filmed again in a dim room (realname_tools/pad_scenes.py `low_light`: a dark exposure lifted
by the sensor's gain, its noise with it; a little darker than the PAD clips', tests/support/light.py) is asked for more light, its
challenges never start, and the attempt ends, retryable, as `too_dark`; the same clip as it was filmed is
checked as before.
"""

from __future__ import annotations

import json

from realname_tools.client import ClipTrack, load_clip
from tests.support.light import dimmed, prompts
from tests.support.media import pad_model_dir, video
from tests.support.waiting import eventually
from tests.test_live_flow import BLINK_CLIP, BLINK_ID, ROOT, ready_for_live, session_json


async def test_a_dim_room_is_asked_for_more_light_and_the_check_never_starts(http, server, services, sandbox_key):
    pad_model_dir()
    services.attempts.settings = services.attempts.settings.replace(start_timeout_s=8.0)
    frames, fps = load_clip(video(BLINK_CLIP), max_seconds=6.0)
    created, customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["blink"])
    run = await customer.start_live(ClipTrack(dimmed(frames), fps))
    assert run.offer_error is None, run.offer_error
    result = await customer.wait_result(run, timeout=90)
    await customer.close()
    assert result is not None and result["status"] == "id_uploaded"  # retryable: an attempt is left
    shown = prompts(run)
    assert any(m["phase"] == "start" and m["hint"] == "too_dark" for m in shown)  # "More light, please"
    assert not any(m["phase"] == "challenge" for m in shown)
    data = await session_json(http, server, sandbox_key, created["id"])
    assert data["failure_reason"] == "too_dark", data["liveness"]
    pad = data["liveness"]["pad"]  # the frames scored while it waited: noisy, not merely dark
    thresholds = services.attempts.pad.thresholds
    assert pad["face_noise"] > thresholds.noisy_above and pad["face_luma"] >= 28.0, pad
    assert pad["verdict"] != "attack"  # a quality refusal, not a spoof verdict
    async with http.get(server.make_url("/verify/result")) as response:
        page = await response.text()
    en = json.loads((ROOT / "server/web/locales/en.json").read_text(encoding="utf-8"))
    assert response.status == 200 and en["reason.too_dark"] in page
    assert await eventually(lambda: not services.attempts.live)


async def test_the_same_clip_in_its_own_light_is_checked_as_before(http, server, services, sandbox_key):
    pad_model_dir()
    frames, fps = load_clip(video(BLINK_CLIP))
    created, customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["blink"])
    run = await customer.start_live(ClipTrack(frames, fps))
    result = await customer.wait_result(run, timeout=60)
    await customer.close()
    assert result is not None and result["status"] == "approved"
    shown = prompts(run)
    assert any(m["phase"] == "challenge" for m in shown) and not any(m["hint"] == "too_dark" for m in shown)
    data = await session_json(http, server, sandbox_key, created["id"])
    assert data["liveness"]["pad"]["face_noise"] <= services.attempts.pad.thresholds.noisy_above
    assert await eventually(lambda: not services.attempts.live)
