"""reference_replay (issue 24 item 2): a live face that is the ID portrait itself, on real faces.

The puppet is made by realname_tools/puppets.py from an ID-like photo and compressed like a clip; the
genuine case is a different photo of the same person, as an ID photo is to its owner's live face.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realname_tools.puppets import live_faces, puppet_of, read_clip, scores, stored_reference, write_clip
from server.matching.images import decode_image
from server.spoof.reference_replay import ReplayLimits, appearance_similarity, reference_replay_signal
from server.spoof.signals import Action, Level, SignalCode
from tests.support.media import photo

PORTRAIT = "jennifer_aniston/deepface_img3.jpg"
ANOTHER_PHOTO = "jennifer_aniston/deepface_img53.jpg"


def load(name: str) -> np.ndarray:
    return decode_image(photo(name).read_bytes(), max_bytes=1 << 30, max_pixels=200_000_000)


def test_the_signal_wants_both_identity_and_appearance():
    limits = ReplayLimits(identity=0.9, appearance=0.6)
    assert reference_replay_signal([], limits) is None
    assert reference_replay_signal([(0.97, 0.3), (0.8, 0.9)], limits) is None  # each alone is not enough
    found = reference_replay_signal([(0.5, 0.1), (0.95, 0.7), (0.96, 0.8)], limits)
    assert found is not None and found.code == SignalCode.REFERENCE_REPLAY
    assert (found.level, found.action) == (Level.HIGH, Action.FAIL)
    assert found.detail["appearance"] == 0.8 and found.detail["faces"] == 2 and found.detail["of"] == 3


def test_appearance_is_near_one_for_the_same_picture_only():
    rng = np.random.default_rng(3)
    face = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    face = cv2.GaussianBlur(face, (0, 0), 1.0)
    assert appearance_similarity(face, face) == pytest.approx(1.0, abs=1e-5)
    other = cv2.GaussianBlur(rng.integers(0, 255, (112, 112, 3), dtype=np.uint8), (0, 0), 1.0)
    assert abs(appearance_similarity(face, other)) < 0.2


def test_a_puppet_of_the_portrait_is_caught_and_another_photo_of_the_person_is_not(models, tmp_path):
    matcher = models.matcher
    reference = stored_reference(matcher, load(PORTRAIT))
    clip = tmp_path / "puppet.mp4"  # generated media stays in the test's temporary folder
    write_clip(puppet_of(matcher, load(PORTRAIT), ["blink", "turn_left"]), clip)
    puppet = scores(reference, live_faces(matcher, read_clip(clip), 10))
    assert reference_replay_signal(puppet) is not None, puppet
    genuine = scores(reference, live_faces(matcher, [load(ANOTHER_PHOTO)] * 3, 2))
    assert genuine and reference_replay_signal(genuine) is None, genuine
