"""A replay of an earlier check (issue 24 item 5), against the real server on a live key.

The attacker holds the footage of a check the merchant has already seen and plays it again, through the
scripted client with its offer disguised as Chrome's (so client_not_browser does not fire) or through the
recorded fallback. The check's movement fingerprint matches the earlier one: `replayed_check` fails it,
also when the footage is re-encoded, scaled, cropped and brighter. Another stretch of the same person's
footage is another check, and nothing matches once the earlier sessions are deleted (their fingerprints
go with their evidence). The footage is the young man's head-turn selfie (a fingerprint needs 6 s of
movement: a still face that only blinks is never compared); the ID photo is another person's, so each
check reaches the decision (rejected for the face) without the portrait's own replay signal.
"""

from __future__ import annotations

import aiohttp
import av
import cv2
import numpy as np
import pytest

from realname_tools.client import ClipTrack, HostedFlowClient, load_clip
from server.liveness.challenges import parse_challenges
from server.storage.check_fingerprints import CheckFingerprints
from tests.attacks.test_injection_attacks import CHROME_UA, disguised_as_chrome, signal
from tests.attacks.test_live_attacks import live_config
from tests.attacks.test_recorded_attacks import a_connection_that_never_came
from tests.support.api import auth
from tests.support.media import photo, video
from tests.support.recording import webm
from tests.support.waiting import eventually
from tests.test_live_flow import OTHER_ID, new_session, ready_for_live, session_json
from tests.test_recorded import HEADTURN_CLIP, plan, recorded_already, upload

# The clip turns left at 2.3-5.5 s, right at 7.5-10.5 s, looks down at 11.5-14 s and up at 14.5-16 s.
TURNS = ["turn_left", "turn_right"]  # from its start: a check of about 9 s (with the hold)
LATER = 7.0  # another check from here
HOLD_S = 1.5  # each footage's first frame held still this long first: a steady neutral start
# Not its look up as well: the footage is neutral for only 0.5 s between its look down and its look up, and
# on a busy machine the frames of so short a pause may reach the analysis late or not at all (the newest frame
# is analysed); the look up would then be asked after the footage moved on, and the check end `wrong_action`.
LATER_CHALLENGES = ["turn_right", "look_down"]


@pytest.fixture(scope="module")
def headturn_clip():
    return load_clip(video(HEADTURN_CLIP), max_seconds=17)


def held(frames: list, fps: float) -> list:
    return [frames[0]] * round(HOLD_S * fps) + frames


def copied(frames: list, fps: float) -> list:
    """The footage as a replayer would pass it on: cropped off-centre, scaled to 3/4, brighter, and
    re-encoded with H.264 at a low quality (the WebRTC path then encodes it again with VP8)."""
    encoder = av.CodecContext.create("libx264", "w")
    first = frames[0].to_ndarray(format="rgb24")
    h, w = first.shape[:2]
    top, bottom, left, right = int(h * 0.04), h - int(h * 0.02), int(w * 0.06), w - int(w * 0.02)
    size = (int((right - left) * 0.8) // 2 * 2, int((bottom - top) * 0.8) // 2 * 2)
    encoder.width, encoder.height, encoder.pix_fmt = size[0], size[1], "yuv420p"
    encoder.framerate = round(fps)
    encoder.options = {"preset": "veryfast", "tune": "zerolatency", "crf": "26"}
    decoder = av.CodecContext.create("h264", "r")
    out = []
    for frame in [*frames, None]:
        if frame is not None:
            rgb = frame.to_ndarray(format="rgb24")[top:bottom, left:right]
            rgb = np.clip(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32) * 0.9 + 35, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        for packet in encoder.encode(frame):
            out += [f.reformat(format="yuv420p") for f in decoder.decode(packet)]
    return out


async def live_check(server, services, key: str, frames: list, fps: float, challenges: list[str] = TURNS) -> dict:
    """One session, checked live by the disguised scripted client playing `frames`; its record."""
    services.lifecycle.challenges_for = lambda session: parse_challenges(challenges)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"User-Agent": CHROME_UA}) as http:
        created = await new_session(http, server, key)
        customer = HostedFlowClient(http, str(server.make_url("/")))
        assert await customer.open(created["url"]) == 303
        assert await customer.consent() == 303
        status, page = await customer.upload_document(photo(OTHER_ID).read_bytes())
        assert status == 303, page
        run = await customer.start_live(ClipTrack(frames, fps), camera_label="Integrated Camera", rewrite_offer=disguised_as_chrome)
        assert run.offer_error is None, run.offer_error
        assert await customer.wait_result(run, timeout=90) is not None
        await customer.close()
        data = await session_json(http, server, key, created["id"])
    assert await eventually(lambda: not services.attempts.live, timeout=20)
    return data


def seen(data: dict) -> dict:
    liveness = data.get("liveness") or {}
    return {"status": data["status"], "failure_reason": data["failure_reason"], "signals": [(s["code"], s["action"]) for s in liveness.get("signals", [])]}


async def test_a_replayed_live_check_fails_until_the_earlier_session_is_deleted(server, services, live_key, headturn_clip):
    clip, fps = headturn_clip
    frames = held(clip, fps)
    first = await live_check(server, services, live_key, frames, fps)
    assert first["status"] == "rejected" and first["failure_reason"] == "face_mismatch", seen(first)
    assert signal(first, "replayed_check") is None and CheckFingerprints(services.store).held(first["id"])

    again = await live_check(server, services, live_key, frames, fps)
    found = signal(again, "replayed_check")
    print(f"\n[attack] the same footage again, live key: {seen(again)} {found and found['detail']}")
    assert found is not None and found["action"] == "fail" and found["detail"]["earlier_session"] == first["id"], seen(again)
    assert again["status"] != "approved" and again["failure_reason"] == "presentation_attack", seen(again)
    assert "replayed_check" in again["liveness"]["detail"]

    copy = await live_check(server, services, live_key, copied(frames, fps), fps)
    print(f"[attack] a cropped, scaled, brighter, re-encoded copy, live key: {seen(copy)} {signal(copy, 'replayed_check')}")
    assert signal(copy, "replayed_check") is not None and copy["failure_reason"] == "presentation_attack", seen(copy)

    # The same man's later footage (his right turn, then down) is another check: it shares only
    # the start of his right turn with the first, far under the 6 s a match needs.
    other = await live_check(server, services, live_key, held(clip[round(LATER * fps) :], fps), fps, LATER_CHALLENGES)
    print(f"[attack] the same man's later footage, live key: {seen(other)}")
    assert other["status"] == "rejected" and signal(other, "replayed_check") is None, seen(other)

    # The sessions holding the replayed footage are deleted: their fingerprints went with their evidence.
    async with aiohttp.ClientSession() as http:
        for data in (first, again, copy):
            async with http.delete(server.make_url(f"/api/v1/sessions/{data['id']}"), headers=auth(live_key)) as response:
                assert response.status == 200
            assert not CheckFingerprints(services.store).held(data["id"])
    after = await live_check(server, services, live_key, frames, fps)
    assert after["status"] == "rejected" and signal(after, "replayed_check") is None, seen(after)


async def recorded_check(server, services, key: str, frames: list, fps: float) -> dict:
    """One session, checked through the recorded fallback (after a connection failure the server saw)."""
    services.lifecycle.challenges_for = lambda session: parse_challenges(TURNS)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        created, _customer = await ready_for_live(http, server, key, OTHER_ID)
        config = await live_config(http, server)
        await a_connection_that_never_came(http, server, services, config, created["id"])
        status, issued = await plan(http, server, config)
        assert status == 200, issued
        recorded_already(services, created["id"])
        status, answer = await upload(http, server, config, issued["nonce"], webm(frames, fps, issued["duration_s"], hold_start_s=1.5))
        assert status == 200, answer
        return await session_json(http, server, key, created["id"])


async def test_a_recording_uploaded_again_fails_as_a_replay(server, services, live_key, headturn_clip):
    frames, fps = headturn_clip
    first = await recorded_check(server, services, live_key, frames, fps)
    assert first["liveness"]["path"] == "recorded" and first["status"] == "rejected", seen(first)
    assert signal(first, "replayed_check") is None, seen(first)
    again = await recorded_check(server, services, live_key, frames, fps)
    found = signal(again, "replayed_check")
    print(f"\n[attack] the same recording uploaded again, live key: {seen(again)} {found and found['detail']}")
    assert found is not None and found["detail"]["earlier_session"] == first["id"], seen(again)
    assert again["status"] != "approved" and again["failure_reason"] == "presentation_attack", seen(again)
