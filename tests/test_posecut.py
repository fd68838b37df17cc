"""The still-cut measurement of realname_tools/posecut.py: its shape residual, the analysed frames it takes
and the steps it weighs, on recorded-like signals (the real-media run is the tool's own)."""

from __future__ import annotations

import math

import numpy as np

from realname_tools.posecut import analysed, shape_residual, stream_steps


def face(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(478, 2)) * 40 + 300


def similar(points: np.ndarray, angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]]) * scale + np.array(shift)


def test_shape_residual_ignores_a_similarity_and_sees_a_change_of_shape():
    points = face()
    assert shape_residual(points, similar(points, 0.2, 1.3, (15.0, -7.0))) < 1e-3
    moved = points.copy()
    moved[:50] += 12.0  # one part of the face moves against the rest
    assert shape_residual(points, moved) > 1.0


def test_analysed_frames_are_sent_frames_due_at_the_rate():
    # 10 s of a 25 fps clip: the page sends 20 frames a second, 0.04 or 0.08 s apart, and a frame is due
    # 0.9 of an interval after the last analysed one (server/liveness/analyzer.py `frame_due`).
    for rate, per_second in ((5.0, 5.0), (8.0, 7.5), (12.0, 10.0)):
        frames = analysed(250, rate, 0)
        assert abs(len(frames) / 10.0 - per_second) <= 0.2
        assert (np.diff(frames) / 25.0).min() >= 0.9 / rate - 1e-9
        assert all(int(i * 0.8) > int((i - 1) * 0.8) for i in frames[1:])  # sent frames only
    assert analysed(250, 12.0, 2)[0] > analysed(250, 12.0, 0)[0]  # a later starting phase


def test_a_still_jump_stands_out_of_a_still_head_and_a_turn_does_not():
    rng = np.random.default_rng(1)
    base, n = face(2), 250
    feats, points = [], np.zeros((n, 478, 2), dtype=np.float32)
    for i in range(n):
        yaw = 0.3 * rng.normal() + (4.0 if i >= 125 else 0.0)  # a cut at frame 125: the head 4 degrees further
        yaw += 25.0 * min(1.0, max(0.0, (i - 200) / 12.0))  # a turn from frame 200, half a second long
        feats.append([yaw, 0.3 * rng.normal(), 0.2 * rng.normal(), 300.0, 300.0, math.log(60.0), 0.3, 0.05])
        points[i] = base + rng.normal(scale=0.2, size=base.shape)
    rows = stream_steps(feats, points, 10.0, 0)
    cut = next(r for r in rows if r["from"] < 125 <= r["at"])
    still = [r for r in rows if r["still"] and r is not cut and r["at"] < 190]
    assert cut["still"] and cut["step_pose"] > 3 * max(r["step_pose"] for r in still)
    assert cut["shift_pose"] > 2 * max(r["shift_pose"] for r in still)
    assert not any(r["still"] for r in rows if 200 < r["at"] <= 212)  # a turn in progress is not still
