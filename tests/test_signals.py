import math

import numpy as np
import pytest

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



def test_frame_signals_measure_eyes_mouth_and_box_from_the_landmarks():
    from server.liveness.signals import LEFT_EYE, RIGHT_EYE, frame_signals
    from server.models.landmarker import FaceLandmarks

    points = np.full((478, 3), 0.5, dtype=np.float32)
    # Each eye 0.1 wide, its two lid pairs 0.02 and 0.04 apart: EAR (0.02 + 0.04) / (2 * 0.1) = 0.3.
    for eye, x0 in ((RIGHT_EYE, 0.30), (LEFT_EYE, 0.60)):
        outer, up1, up2, inner, low1, low2 = eye
        points[outer, :2], points[inner, :2] = (x0, 0.4), (x0 + 0.1, 0.4)
        points[up1, :2], points[low2, :2] = (x0 + 0.03, 0.39), (x0 + 0.03, 0.41)
        points[up2, :2], points[low1, :2] = (x0 + 0.07, 0.38), (x0 + 0.07, 0.42)
    points[61, :2], points[291, :2] = (0.4, 0.7), (0.6, 0.7)  # mouth corners
    points[13, :2], points[14, :2] = (0.5, 0.69), (0.5, 0.73)  # inner lips
    points[10, :2], points[152, :2] = (0.5, 0.2), (0.5, 0.9)
    face = FaceLandmarks(points=points, blendshapes={"eyeBlinkLeft": 0.2, "eyeBlinkRight": 0.4}, matrix=np.eye(4))
    rgb = np.full((100, 100, 3), 128, dtype=np.uint8)  # square: image-space distances are the normalised ones
    s = frame_signals(1.5, [face], rgb)
    assert s.face_count == 1 and (s.frame_w, s.frame_h) == (100, 100)
    assert s.box == pytest.approx((0.3, 0.2, 0.7, 0.9))
    assert s.ear == pytest.approx(0.3, rel=1e-5)
    assert s.mouth_open_ratio == pytest.approx(0.04 / 0.2, rel=1e-5)
    assert s.mouth_width == pytest.approx(0.2 / 0.3, rel=1e-5)  # eye centres 0.35 and 0.65 apart
    assert (s.eye_closure_right, s.eye_closure_left) == (pytest.approx(0.2), pytest.approx(0.4))
    assert s.brightness == pytest.approx(128.0) and s.sharpness == pytest.approx(0.0)
