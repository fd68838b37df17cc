"""A reviewer who can judge: a session that goes to review because of PAD keeps a few whole camera frames
at reduced size, sealed like every evidence, shown on the console's review page and erased with the
evidence; a session decided without a person keeps none. Real models on a real clip, the real decision
(server/flow/attempts.py `decide`), a real SQLite file."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from server.liveness.analyzer import SCENE_KINDS, SCENE_SIDE
from server.liveness.challenges import Challenge
from server.liveness.replay import ReplayReport, replay_video
from server.models.loader import landmarker_file
from server.retention import run_once
from server.sessions import CheckPath, Status
from server.spoof.pad import PadResult, PadThresholds, PadVerdict
from server.spoof.signals import StreamFacts, check_signals
from tests.support.console import make_operator, sign_in
from tests.support.media import photo, video

BLINK_CLIP = "blink_frontal_man_phone_portrait_14s.mp4"
BLINK_ID = "vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg"
PIECE = 32


@pytest.fixture(scope="module")
def checked() -> ReplayReport:
    """The blink clip through the same analyzer and engine as a live check (its frames and crops)."""
    report = replay_video(video(BLINK_CLIP), [Challenge.BLINK], landmarker_file())
    assert report.result.passed and report.faces
    return report


def thresholds(services) -> PadThresholds:
    return services.attempts.pad.thresholds if services.attempts.pad is not None else PadThresholds()


async def decided(services, checked: ReplayReport, pad: PadResult):
    """A sandbox session with the clip's person as its ID photo, decided after the clip's passed check."""
    [key] = services.store.api_keys()
    lifecycle = services.lifecycle
    session, _ = lifecycle.create(key.id, True, "order-7", "http://127.0.0.1")
    session = lifecycle.record_consent(session, "en", "consent text", "test")
    session = await lifecycle.set_reference(session, photo(BLINK_ID).read_bytes(), "image/jpeg", "upload", "customer")
    session = lifecycle.move(session, Status.LIVE, "customer", attempts=1)
    signals = check_signals(StreamFacts(), pad, thresholds(services))
    return await services.attempts.decide(session, checked.faces, checked.result, {}, pad, signals, CheckPath.WEBRTC, checked.scenes)


def uncertain(services) -> PadResult:
    limits = thresholds(services)
    score = (limits.attack + limits.review) / 2
    result = PadResult.of([score] * 5, limits, 10.0, 5)
    assert result.verdict == PadVerdict.REVIEW
    return result


async def test_a_pad_review_keeps_sealed_camera_frames_shown_to_the_reviewer_and_erased_with_the_evidence(
    http, server, services, settings, sandbox_key, checked
):
    session = await decided(services, checked, uncertain(services))
    assert session.status == Status.REVIEW and session.liveness["review_because"] == ["pad_uncertain"]
    kinds = [k for k in services.store.evidence_kinds(session.id) if k.startswith("scene_")]
    assert 3 <= len(kinds) <= len(SCENE_KINDS)
    frames = [services.store.evidence(session.id, kind) for kind in kinds]
    for data in frames:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and max(image.shape[:2]) <= SCENE_SIDE and min(image.shape[:2]) > 100  # the whole frame, reduced
    # Sealed: no piece of any frame is in the database file (or its WAL).
    raw = b"".join(p.read_bytes() for p in sorted(settings.database_path.parent.glob(settings.database_path.name + "*")))
    assert not any(data[i : i + PIECE] in raw for data in frames for i in range(0, len(data) - PIECE, PIECE))

    make_operator(services, "Test Shop", "alice")
    assert await sign_in(http, server, "Test Shop", "alice") == 303
    async with http.get(server.make_url(f"/console/sessions/{session.id}")) as response:
        page = await response.text()
    assert 'id="scenes"' in page and all(f"evidence/{kind}" in page for kind in kinds) and "evidence/live_face_0" in page
    async with http.get(server.make_url(f"/console/sessions/{session.id}/evidence/{kinds[0]}")) as response:
        assert response.status == 200 and await response.read() == frames[0]
        assert response.headers["Content-Type"] == "image/jpeg" and "no-store" in response.headers["Cache-Control"]

    await services.lifecycle.redact(services.store.session(session.id), "api")
    assert services.store.evidence_kinds(session.id) == []


async def test_retention_purges_the_camera_frames(services, settings, sandbox_key, checked):
    session = await decided(services, checked, uncertain(services))
    assert any(k.startswith("scene_") for k in services.store.evidence_kinds(session.id))
    run_once(settings, services.store, services.lifecycle, now=session.created_at + settings.retention_days * 86400 + 60)
    assert services.store.evidence_kinds(session.id) == []


async def test_a_session_decided_without_a_person_keeps_no_camera_frames(services, sandbox_key, checked):
    limits = thresholds(services)
    passed = PadResult.of([min(1.0, limits.review + 0.05)] * 5, limits, 10.0, 5)
    session = await decided(services, checked, passed)
    assert session.status == Status.APPROVED
    kinds = services.store.evidence_kinds(session.id)
    assert "live_face_0" in kinds and not any(k.startswith("scene_") for k in kinds)
