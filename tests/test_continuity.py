"""Cuts in a stream (spoof/continuity.py) and the `stream_discontinuity` signal, on synthetic frames; the
calibration on the shared genuine clips and generated splices is `python -m realname_tools.splices
calibrate` (docs/anti-spoofing.md), and a splice judged end to end is in tests/test_offline_judgement.py."""

from __future__ import annotations

import numpy as np

from server.spoof.continuity import ContinuityTracker, Step, cuts
from server.spoof.signals import Action, Level, SignalCode, StreamFacts, check_signals, discontinuity_signal

FPS = 15.0


def scene(seed: int, size=(480, 640)) -> np.ndarray:
    """A smooth random picture (a room, a face): low-frequency shapes, RGB uint8."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(small, size[::-1], interpolation=cv2.INTER_CUBIC)


def stream(pieces: list[tuple[int, int]], shake_px: int = 0, seed: int = 0) -> ContinuityTracker:
    """Frames of each (scene, count) piece in turn, drifting slowly, with sensor noise and camera shake."""
    rng = np.random.default_rng(seed)
    tracker = ContinuityTracker()
    index = 0
    for scene_seed, count in pieces:
        base = scene(scene_seed).astype(np.int16)
        for i in range(count):
            frame = np.roll(base, (i // 3, i // 2), axis=(0, 1))  # a slow movement
            if shake_px:
                frame = np.roll(frame, tuple(rng.integers(-shake_px, shake_px + 1, 2)), axis=(0, 1))
            frame = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
            tracker.add(index / FPS, frame)
            index += 1
    return tracker


def test_a_continuous_stream_has_no_cut_even_with_a_shaking_camera():
    assert cuts(stream([(1, 60)]).steps) == []
    assert cuts(stream([(1, 60)], shake_px=20).steps) == []


def test_each_cut_between_pieces_of_footage_is_found_where_it_is():
    found = cuts(stream([(1, 30), (2, 20), (3, 20)]).steps)
    assert [round(t * FPS) for t in found] == [30, 50]


def test_a_jump_after_a_stall_is_not_judged():
    steps = [Step(i / FPS, 1 / FPS, 1.0) for i in range(1, 30)]
    steps[15] = Step(steps[15].t, 1.0, 40.0)  # a second without frames, then the person elsewhere
    assert cuts(steps) == []
    steps[15] = Step(steps[15].t, 1 / FPS, 40.0)
    assert cuts(steps) == [steps[15].t]


def cut_steps(at: list[int]) -> list[Step]:
    return [Step(i / FPS, 1 / FPS, 30.0 if i in at else 1.0) for i in range(1, 90)]


def test_cuts_during_the_challenges_ask_for_review_then_fail_the_check():
    spans = [(2.0, 3.0), (3.5, 5.0)]
    assert discontinuity_signal(cut_steps([]), spans) is None
    one = discontinuity_signal(cut_steps([38]), spans)  # 2.53 s
    assert (one.code, one.level, one.action) == (SignalCode.STREAM_DISCONTINUITY, Level.ELEVATED, Action.REVIEW)
    two = discontinuity_signal(cut_steps([38, 60]), spans)  # 2.53 s and 4 s
    assert (two.level, two.action, two.detail["during_challenges"]) == (Level.HIGH, Action.FAIL, 2)
    before = discontinuity_signal(cut_steps([5]), spans)  # before the first prompt: only noted
    assert (before.level, before.action) == (Level.LOW, Action.NONE)


def test_check_signals_reports_it_from_the_stream_facts():
    facts = StreamFacts(continuity=cut_steps([38, 60]), challenge_spans=[(2.0, 3.0), (3.5, 5.0)])
    assert SignalCode.STREAM_DISCONTINUITY in [s.code for s in check_signals(facts, None)]
