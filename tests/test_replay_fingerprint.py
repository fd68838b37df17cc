"""The replayed-check fingerprint (spoof/replay_fingerprint.py) on synthetic movement, and its storage
(storage/check_fingerprints.py) on a real SQLite file and a real PostgreSQL database: kept per merchant
and key kind, erased with the evidence. The calibration on the shared clips is in docs/anti-spoofing.md;
the attack tests drive the real server (tests/attacks/test_replay_attacks.py)."""

from __future__ import annotations

import os
import random
import time

import numpy as np
import pytest

from server.flow.judgement import judge
from server.liveness.signals import FrameSignals
from server.matching.matcher import Decision
from server.sessions import Status
from server.spoof.replay_fingerprint import MEASURES, EarlierCheck, Fingerprint, FingerprintRecorder, ReplayLimits, replayed_check_signal, similarity
from server.spoof.signals import SignalCode
from server.storage.check_fingerprints import CheckFingerprints
from server.storage.crypto import Cipher
from server.storage.face_data import FaceDataRecords
from server.storage.store import Store
from tests.support.postgres import BACKENDS, database_for
from tests.test_store import new_session


def performance(seed: int, seconds: float = 8.0, fps: float = 15.0, start: float = 0.0, noise: float = 0.3) -> list[FrameSignals]:
    """A face moving as a person does (random smooth head movement, blinks), sampled at `fps` from `start`;
    the same seed is the same performance, measured again with the landmarker's noise."""
    motion = np.random.default_rng(seed)
    knots = motion.normal(0, 4, (int(seconds) + 3, 4))
    blinks = motion.uniform(0, seconds, 4)
    measured = random.Random(seed * 7919 + int(fps) + int(start * 10))
    out = []
    for i in range(int((seconds - start) * fps)):
        t = start + i / fps
        k, w = int(t), t - int(t)
        yaw, pitch, roll, dx = knots[k] * (1 - w) + knots[k + 1] * w
        closed = max(0.0, 1 - min(abs(t - b) for b in blinks) / 0.15)
        n = lambda: measured.gauss(0, noise)  # noqa: E731
        out.append(
            FrameSignals(
                t=t - start,
                face_count=1,
                frame_w=640,
                frame_h=480,
                box=(0.4 + dx / 400, 0.3, 0.6 + dx / 400, 0.6),
                yaw=yaw + n(),
                pitch=pitch + n(),
                roll=roll / 2 + n(),
                eye_closure_left=closed,
                eye_closure_right=closed,
            )
        )
    return out


def fingerprint(frames: list[FrameSignals]) -> Fingerprint:
    recorder = FingerprintRecorder()
    for s in frames:
        recorder.add(s)
    found = recorder.fingerprint()
    assert found is not None
    return found


def test_a_replay_matches_at_another_rate_and_start_and_another_performance_does_not():
    earlier = fingerprint(performance(1, seconds=10.0))
    replayed = fingerprint(performance(1, seconds=10.0, fps=24.0, start=1.5))  # another frame rate, started later
    score, overlap = similarity(replayed, earlier)
    assert score > 0.9 and overlap >= 8.0
    other, _ = similarity(fingerprint(performance(2, seconds=10.0)), earlier)
    assert other < 0.5
    signal = replayed_check_signal(replayed, [EarlierCheck("ses_other", fingerprint(performance(2, seconds=10.0))), EarlierCheck("ses_earlier", earlier)])
    assert signal is not None and signal.code == SignalCode.REPLAYED_CHECK and signal.action.value == "fail"
    assert signal.detail["earlier_session"] == "ses_earlier" and signal.detail["compared"] == 2
    assert replayed_check_signal(fingerprint(performance(3, seconds=10.0)), [EarlierCheck("ses_earlier", earlier)]) is None


def test_random_performances_do_not_match_one_another():
    """Smooth movements of different checks look alike over a second or two; over the 6 s and three
    moving parts a match needs, they do not (780 pairs here; 12,720 in docs/anti-spoofing.md)."""
    performances = [fingerprint(performance(seed, seconds=10.0)) for seed in range(100, 140)]
    every = ReplayLimits(prefilter=0.0)  # every candidate offset scored part by part
    scores = [similarity(a, b, every)[0] for i, a in enumerate(performances) for b in performances[i + 1 :]]
    assert max(scores) < ReplayLimits().similarity


def test_a_still_face_or_a_short_check_matches_nothing():
    still = [FrameSignals(t=i / 15, face_count=1, frame_w=640, frame_h=480, box=(0.4, 0.3, 0.6, 0.6)) for i in range(150)]
    assert similarity(fingerprint(still), fingerprint(still)) == (0.0, 0.0)
    short = fingerprint(performance(1, seconds=3.0))
    assert similarity(short, short)[0] == 0.0  # under min_overlap_s: too short to tell


def test_the_fingerprint_is_compact_and_keeps_gaps():
    frames = [s for s in performance(1) if not 3.0 <= s.t < 4.0]  # a second without a face
    found = fingerprint(frames)
    data = found.to_bytes()
    assert len(data) == 1 + len(found.samples) * len(MEASURES) * 2 and len(data) < 2000
    back = Fingerprint.from_bytes(data)
    assert back is not None and np.isnan(back.samples).any(axis=1).sum() >= 5
    assert Fingerprint.from_bytes(b"\x07" + data[1:]) is None and Fingerprint.from_bytes(b"") is None


def test_replayed_check_acts_on_live_keys_and_is_only_flagged_on_sandbox_keys():
    signal = replayed_check_signal(fingerprint(performance(1, seconds=10.0)), [EarlierCheck("ses_earlier", fingerprint(performance(1, seconds=10.0)))])
    assert signal is not None
    live = judge(Decision.MATCH, [signal], sandbox=False)
    assert live.status == Status.FAILED and live.attacks == ("replayed_check",)
    assert judge(Decision.MATCH, [signal], sandbox=True).status == Status.APPROVED


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    store = Store(database_for(request) or tmp_path / "db.sqlite3", Cipher(os.urandom(32)))
    yield store
    store.close()


def test_fingerprints_are_sealed_per_merchant_and_erased_with_the_evidence(store):
    records = CheckFingerprints(store)
    for session_id in ("ses_1", "ses_2", "ses_3"):
        new_session(store, session_id)
    other = store.create_merchant("other shop")
    key = store.create_api_key(other.id, "its key", "rn_test_other", "otherhash", True, b"whsec_y")
    new_session(store, "ses_4", api_key_id=key)
    store._write("UPDATE sessions SET merchant_id = ? WHERE id = ?", (other.id, "ses_4"))
    for session_id in ("ses_1", "ses_2", "ses_3", "ses_4"):
        records.keep(session_id, True, f"fingerprint of {session_id}".encode())
    sealed = store._one("SELECT sealed FROM check_fingerprints WHERE session_id = ?", ("ses_1",))["sealed"]
    assert b"fingerprint of" not in bytes(sealed)
    # The merchant's own checks on the same kind of key, newest first, never the session's own.
    assert [s for s, _ in records.earlier("ses_3", True)] == ["ses_2", "ses_1"]
    assert dict(records.earlier("ses_3", True))["ses_1"] == b"fingerprint of ses_1"
    assert records.earlier("ses_3", False) == [] and records.earlier("ses_4", True) == []
    assert [s for s, _ in records.earlier("ses_3", True, limit=1)] == ["ses_2"]
    # A person's access export describes it with the evidence.
    store.put_evidence("ses_2", "live_embedding", b"template")
    assert [i["kind"] for i in FaceDataRecords(store).inventory("ses_2")] == ["live_embedding", "movement_fingerprint"]
    # Erased with the evidence: deleted (redaction, DELETE, minimal retention), or purged by age.
    store.put_evidence("ses_1", "reference_face", b"jpeg")
    store.delete_evidence("ses_1")
    assert not records.held("ses_1") and records.held("ses_2")
    store.purge_evidence_before(time.time() + 1)
    assert not records.held("ses_2") and not records.held("ses_4")
    # A redacted session keeps none, even from a decision that was still running.
    store.update_session("ses_3", redacted_at=time.time())
    records.keep("ses_3", True, b"late")
    assert not records.held("ses_3")
