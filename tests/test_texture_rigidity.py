"""rigid_texture (issue 24 item 3): a face that turns while its texture stays the neutral one, warped.

On real faces: a mesh-warped puppet (realname_tools/puppets.py, made from a press photo) against the
genuine head-turn selfie, both measured as a check's tracker measures them (realname_tools/rigidity.py).
"""

from __future__ import annotations

import pytest

from realname_tools.rigidity import frames, measure
from server.models.loader import landmarker_file, new_landmarker
from server.spoof.signals import Action, Level, SignalCode, StreamFacts, check_signals, rigid_texture_signal
from server.spoof.texture_rigidity import CLEAR_TURN_DEG, RIGID_BELOW, Rigidity, RigiditySample, RigidityTracker, texture_change
from tests.support.media import video

PHOTO = "george_clooney/deepface_img39.jpg"  # not an ID portrait of realname_tools/eval_injection.py
HEADTURN = "headturn_lr_nod_phone_selfie_young_man_21s.mp4"


def test_the_signal_fails_a_rigid_texture_only():
    assert rigid_texture_signal(None) is None
    assert rigid_texture_signal(Rigidity(RIGID_BELOW + 0.01, 12, 25.0)) is None
    found = rigid_texture_signal(Rigidity(0.05, 12, 21.04))
    assert found is not None and found.code == SignalCode.RIGID_TEXTURE
    assert (found.level, found.action) == (Level.HIGH, Action.FAIL)
    assert found.detail == {"texture_change": 0.05, "below": RIGID_BELOW, "frames": 12, "max_angle_deg": 21.0}
    assert [s.code for s in check_signals(StreamFacts(rigidity=Rigidity(0.05, 12, 21.0)), None)] == [SignalCode.RIGID_TEXTURE]


def test_a_rigid_texture_over_a_barely_sufficient_turn_goes_to_review_not_refusal():
    found = rigid_texture_signal(Rigidity(0.05, 4, CLEAR_TURN_DEG - 4.0))
    assert found is not None and (found.level, found.action) == (Level.ELEVATED, Action.REVIEW)


def test_a_check_without_turned_frames_has_no_value():
    tracker = RigidityTracker()
    assert tracker.result() is None  # blinks and smiles only: nothing compared


# The turned frames (t, degrees from the neutral face, texture change) of a genuine check whose only
# challenge was a fast turn, cut short at its completion: the head-turn selfie at 15 fps and 120 kbps
# (realname_tools/pad_attacks.py's `compressed` genuine clip), recorded with realname_tools/rigidity.py.
FAST_LAST_TURN = [(2.0, 10.6, 0.091), (2.07, 17.2, 0.130), (2.13, 21.3, 0.165), (2.2, 23.1, 0.197)]


def test_a_fast_last_turn_is_judged_where_it_turned_furthest():
    # All four frames' median (0.148) is under the limit; a real head's change grows with its angle, so
    # the furthest-turned half is judged, and the genuine turn is not taken for a warped photo.
    tracker = RigidityTracker(samples=[RigiditySample(*s) for s in FAST_LAST_TURN])
    result = tracker.result()
    assert result is not None and result.change == pytest.approx(0.181) and result.change > RIGID_BELOW
    assert (result.samples, result.max_angle_deg) == (4, 23.1)


def test_a_warped_photo_is_flat_at_every_angle():
    flat = [RigiditySample(2 + 0.05 * i, 10.0 + i, 0.06 + 0.01 * (i % 3)) for i in range(16)]  # a puppet: 0.04-0.11
    result = RigidityTracker(samples=flat).result()
    assert result is not None and result.change < RIGID_BELOW and result.max_angle_deg == 25.0


@pytest.fixture(scope="module")
def landmarker():
    found = new_landmarker(landmarker_file())
    yield found
    found.close()


def test_a_puppet_of_a_photo_turns_rigidly_and_a_turning_head_does_not(mesh_puppets, landmarker):
    # the puppet tests/test_offline_judgement.py judges (made once a run)
    puppet = measure(mesh_puppets(PHOTO, ["turn_right", "look_up"]), landmarker, every=2)
    assert puppet["check"] is not None and puppet["check"] < RIGID_BELOW, puppet["turns"]
    genuine = measure(video(HEADTURN), landmarker, every=3)
    assert genuine["check"] is not None and genuine["check"] > RIGID_BELOW, genuine["turns"]
    assert min(genuine["turns"]) > max(puppet["turns"])


def test_the_same_frame_compared_with_itself_is_unchanged(landmarker, tmp_path):
    _, rgb = next(frames(video(HEADTURN), every=1))
    faces = landmarker.get(rgb)
    tracker = RigidityTracker()
    tracker.add(0.0, rgb, faces[0].points, 0.0, 0.0, 0.0, (0.0, 0.0))
    assert tracker.neutral is not None
    assert texture_change(tracker.neutral, rgb, faces[0].points) == pytest.approx(0.0, abs=0.02)
