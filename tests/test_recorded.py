"""The recorded check over real HTTP: a plan (challenges, timetable, one-time nonce), a WebM clip cut from
a real recording, the same engine, anti-spoofing and face match; and every way a clip is refused."""

from __future__ import annotations

import dataclasses
import json
import re
import time

import pytest

from realname_tools.client import load_clip
from server.web.pages import NONCE_HEADER
from tests.support.media import video
from tests.support.recording import webm
from tests.test_live_flow import BLINK_CLIP, BLINK_ID, ready_for_live, session_json

HEADTURN_CLIP = "headturn_lr_nod_phone_selfie_young_man_21s.mp4"
HEADTURN_ID = "vid_tranv_selfie_man/frame_t0.5s_frontal.jpg"


@pytest.fixture(scope="module")
def blink_frames():
    return load_clip(video(BLINK_CLIP), max_seconds=12)


@pytest.fixture(scope="module")
def headturn_frames():
    return load_clip(video(HEADTURN_CLIP), max_seconds=12)


async def live_config(http, server) -> dict:
    async with http.get(server.make_url("/verify/live")) as response:
        page = await response.text()
    return json.loads(re.search(r'<script type="application/json" id="live-config">(.*?)</script>', page, re.S).group(1))


async def plan(http, server, config) -> tuple[int, dict]:
    async with http.post(server.make_url(config["planUrl"]), json={}, headers={config["csrfHeader"]: config["csrf"]}) as response:
        return response.status, await response.json()


def recorded_already(services, session_id: str) -> None:
    """As if the clip had been recorded since the plan was issued (a clip cannot come sooner)."""
    plans = services.recorded.plans
    plan = plans[session_id]
    plans[session_id] = dataclasses.replace(plan, issued_at=plan.issued_at - plan.schedule.duration_s)


async def prompt(http, server, config, nonce: str, index: int) -> tuple[int, dict]:
    headers = {config["csrfHeader"]: config["csrf"], NONCE_HEADER: nonce}
    async with http.post(server.make_url(config["promptUrl"]), json={"index": index}, headers=headers) as response:
        return response.status, await response.json()


async def upload(http, server, config, nonce: str, clip: bytes, content_type: str = "video/webm") -> tuple[int, dict]:
    headers = {config["csrfHeader"]: config["csrf"], NONCE_HEADER: nonce, "Content-Type": content_type}
    async with http.post(server.make_url(config["recordUrl"]), data=clip, headers=headers) as response:
        return response.status, await response.json()


async def test_a_genuine_recording_on_its_timetable_is_approved(http, server, services, sandbox_key, blink_frames):
    created, _customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["blink"])
    config = await live_config(http, server)
    status, issued = await plan(http, server, config)
    assert status == 200 and issued["count"] == 1 and issued["nonce"] and "challenges" not in issued
    # The challenge is revealed only when the recording reaches its prompt.
    status, answer = await prompt(http, server, config, issued["nonce"], 0)
    assert status == 409 and answer["error"]["code"] == "prompt_not_due"
    plans = services.recorded.plans
    plans[created["id"]] = dataclasses.replace(plans[created["id"]], issued_at=time.time() - issued["prompts_at_s"][0])
    assert await prompt(http, server, config, issued["nonce"], 0) == (200, {"index": 0, "challenge": "blink"})
    recorded_already(services, created["id"])
    frames, fps = blink_frames
    status, answer = await upload(http, server, config, issued["nonce"], webm(frames, fps, issued["duration_s"]))
    assert status == 200 and answer == {"status": "approved", "resultUrl": "/verify/result"}
    data = await session_json(http, server, sandbox_key, created["id"])
    assert data["status"] == "approved" and data["attempts"]["used"] == 1
    assert data["liveness"]["path"] == "recorded" and data["liveness"]["challenges"][0]["passed"]
    ended = [row["detail"] for row in services.store.audit_for(created["id"]) if row["action"] == "live.ended"]
    assert ended == [{"reason": "completed", "path": "recorded", "connection": "recorded"}]
    # The nonce was used: the same clip again is refused, and nothing changes.
    status, answer = await upload(http, server, config, issued["nonce"], b"\x1a\x45\xdf\xa3")
    assert status == 409 and answer["error"]["code"] == "recording_stale"


async def test_a_clip_not_made_for_this_timetable_fails(http, server, services, sandbox_key, headturn_frames):
    """The young man turns left 2 s into his clip; this plan shows "turn left" at 3 s, so he has turned and
    come back before the prompt: the movement is not an answer to it."""
    created, _customer = await ready_for_live(http, server, sandbox_key, HEADTURN_ID, fixed_challenges=["turn_left"])
    config = await live_config(http, server)
    _status, issued = await plan(http, server, config)
    recorded_already(services, created["id"])
    frames, fps = headturn_frames
    status, answer = await upload(http, server, config, issued["nonce"], webm(frames, fps, issued["duration_s"]))
    assert status == 200 and answer["status"] == "id_uploaded"
    data = await session_json(http, server, sandbox_key, created["id"])
    assert data["failure_reason"] == "off_schedule" and data["attempts"]["used"] == 1
    assert data["liveness"]["reason"] == "off_schedule" and "after its prompt" in data["liveness"]["detail"]
    # The same movements, started when the prompt asks for them, pass.
    _status, issued = await plan(http, server, config)
    recorded_already(services, created["id"])
    status, answer = await upload(http, server, config, issued["nonce"], webm(frames, fps, issued["duration_s"], hold_start_s=1.5))
    assert (status, answer["status"]) == (200, "approved")


async def test_a_stale_a_replaced_or_a_foreign_nonce_is_refused_and_each_plan_used_an_attempt(http, server, services, sandbox_key):
    created, _customer = await ready_for_live(http, server, sandbox_key, BLINK_ID)
    config = await live_config(http, server)
    _status, first = await plan(http, server, config)
    _status, second = await plan(http, server, config)  # a new plan makes the first one's nonce stale
    for nonce in (first["nonce"], "", "x" * 43):
        status, answer = await upload(http, server, config, nonce, b"\x1a\x45\xdf\xa3")
        assert status == 409 and answer["error"]["code"] == "recording_stale"
    _status, third = await plan(http, server, config)
    plans = services.recorded.plans
    plans[created["id"]] = dataclasses.replace(plans[created["id"]], expires_at=time.time() - 1)  # its time passed
    status, answer = await upload(http, server, config, third["nonce"], b"\x1a\x45\xdf\xa3")
    assert status == 409 and answer["error"]["code"] == "recording_stale"
    data = await session_json(http, server, sandbox_key, created["id"])
    assert data["status"] == "id_uploaded" and data["attempts"]["used"] == 3  # three plans
    assert second["nonce"] != first["nonce"]
    status, answer = await plan(http, server, config)
    assert status == 403 and answer["error"]["code"] == "no_attempts_left"


async def test_a_short_or_unreadable_clip_fails_its_attempt_with_a_clear_reason(http, server, services, sandbox_key, blink_frames):
    created, _customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["blink"])
    config = await live_config(http, server)
    frames, fps = blink_frames
    _status, issued = await plan(http, server, config)
    recorded_already(services, created["id"])
    _status, answer = await upload(http, server, config, issued["nonce"], webm(frames, fps, issued["duration_s"] - 4))
    assert answer["reason"] == "recording_length"
    assert (await session_json(http, server, sandbox_key, created["id"]))["failure_reason"] == "recording_length"
    _status, issued = await plan(http, server, config)
    recorded_already(services, created["id"])
    await upload(http, server, config, issued["nonce"], b"\x1a\x45\xdf\xa3" + b"\x00" * 5000)
    data = await session_json(http, server, sandbox_key, created["id"])
    assert data["failure_reason"] == "recording_unreadable" and data["attempts"]["used"] == 2


async def test_uploads_need_the_csrf_token_a_video_type_and_a_bounded_size(http, server, services, sandbox_key):
    await ready_for_live(http, server, sandbox_key, BLINK_ID)
    config = await live_config(http, server)
    _status, issued = await plan(http, server, config)
    status, answer = await upload(http, server, {**config, "csrf": "0" * 64}, issued["nonce"], b"x")
    assert status == 403 and answer["error"]["code"] == "csrf"
    status, answer = await upload(http, server, config, issued["nonce"], b"x", content_type="text/plain")
    assert status == 415
    services.settings = services.settings.replace(max_recording_bytes=1000)
    big = b"\x00" * 2000
    headers = {config["csrfHeader"]: config["csrf"], NONCE_HEADER: issued["nonce"], "Content-Type": "video/webm"}
    async with http.post(server.make_url(config["recordUrl"]), data=big, headers=headers) as response:
        assert response.status == 413


async def test_a_virtual_camera_cannot_record_for_a_live_key(http, server, live_key):
    await ready_for_live(http, server, live_key, BLINK_ID)
    config = await live_config(http, server)
    headers = {config["csrfHeader"]: config["csrf"]}
    async with http.post(server.make_url(config["planUrl"]), json={"camera_label": "OBS Virtual Camera"}, headers=headers) as response:
        assert response.status == 403 and (await response.json())["error"]["code"] == "virtual_camera"


def test_a_challenge_is_revealed_only_when_the_recording_reaches_its_prompt():
    from server.flow.recorded import PROMPT_EARLY_S, RecordingPlan
    from server.liveness.challenges import Challenge
    from server.liveness.schedule import RecordingSchedule

    schedule = RecordingSchedule(2)
    issued = 1000.0
    plan = RecordingPlan("s", "h", (Challenge.BLINK, Challenge.TURN_LEFT), schedule, issued, issued + 100)
    first, second = (issued + t for t in schedule.prompts_at)
    assert "challenges" not in plan.to_page("n") and plan.to_page("n")["count"] == 2
    assert plan.challenge_at(0, first - PROMPT_EARLY_S - 0.1) is None
    assert plan.challenge_at(0, first - PROMPT_EARLY_S + 0.1) == Challenge.BLINK
    assert plan.challenge_at(1, first) is None  # the next one is not due yet
    assert plan.challenge_at(1, second) == Challenge.TURN_LEFT
    assert plan.challenge_at(0, first + schedule.slot_s + 0.1) is None  # its slot has passed
    assert plan.challenge_at(2, second) is None and plan.challenge_at(-1, second) is None
    assert plan.made_too_soon(issued + 1) and not plan.made_too_soon(issued + schedule.duration_s)


def test_on_a_live_key_any_stream_signal_sends_a_recorded_check_to_review():
    from server.flow.recorded import stricter
    from server.spoof.signals import Action, Level, RiskSignal, SignalCode

    signals = [
        RiskSignal(SignalCode.PAD_PASSED, Level.LOW),
        RiskSignal(SignalCode.REPEATED_FRAMES, Level.ELEVATED),
        RiskSignal(SignalCode.REACTION_TOO_FAST, Level.HIGH),
        RiskSignal(SignalCode.PAD_ATTACK, Level.HIGH, action=Action.FAIL),
    ]
    live = stricter(signals, sandbox=False)
    assert [s.action for s in live] == [Action.NONE, Action.REVIEW, Action.REVIEW, Action.FAIL]
    assert stricter(signals, sandbox=True) == signals  # sandbox keys flag, never act
