import math

import numpy as np

from server.liveness.signals import FrameSignals, head_angles


def rotation(yaw_deg=0.0, pitch_deg=0.0):
    y, p = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    m = np.eye(4)
    m[:3, :3] = ry @ rx
    return m


def test_head_angles_from_the_transformation_matrix():
    yaw, pitch, roll = head_angles(rotation(yaw_deg=30))
    assert abs(yaw - 30) < 1e-6 and abs(pitch) < 1e-6 and abs(roll) < 1e-6
    _, pitch, _ = head_angles(rotation(pitch_deg=-20))
    assert abs(pitch - 20) < 1e-6  # MediaPipe's frame: negative rotation about x is looking up


def test_signals_round_trip():
    s = FrameSignals(t=1.0, face_count=1, frame_w=640, frame_h=480, box=(0.4, 0.3, 0.6, 0.7), eye_closure_left=0.2, eye_closure_right=0.7)
    assert FrameSignals.from_dict(s.to_dict()) == s
    assert s.eyes_closed == 0.2 and abs(s.face_size - 128 / 480) < 1e-9
