"""Per-frame signals derived from face landmarks: pure functions of landmarks and pixels."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..models.landmarker import FaceLandmarks

# MediaPipe face-mesh indices. "Right"/"left" are the person's own.
RIGHT_EYE = (33, 160, 158, 133, 153, 144)  # outer corner, upper x2, inner corner, lower x2
LEFT_EYE = (263, 387, 385, 362, 380, 373)
MOUTH_CORNERS = (61, 291)
INNER_LIPS = (13, 14)
RIGHT_EYE_CENTRE_POINTS = (33, 133)
LEFT_EYE_CENTRE_POINTS = (263, 362)


@dataclass(frozen=True)
class FrameSignals:
    """What one analysed frame says about the face in it. Angles in degrees.

    `yaw` is positive when the person turns to their own left, which in an unmirrored camera frame shows
    the face turned toward image-right. `pitch` is positive when they look up.
    """

    t: float
    face_count: int
    frame_w: int = 0
    frame_h: int = 0
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 normalised to the frame
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    eye_closure_left: float = 0.0  # blendshape eyeBlink, 0 open .. 1 closed
    eye_closure_right: float = 0.0
    ear: float = 0.0  # eye aspect ratio, mean of both eyes
    jaw_open: float = 0.0
    mouth_open_ratio: float = 0.0  # inner-lip gap over mouth width
    smile: float = 0.0
    mouth_width: float = 0.0  # mouth corner distance over inter-ocular distance
    brightness: float = 0.0  # mean luma of the face, 0..255
    sharpness: float = 0.0  # variance of the Laplacian of the face at a fixed scale

    @property
    def has_one_face(self) -> bool:
        return self.face_count == 1

    @property
    def face_size(self) -> float:
        """Face width as a fraction of the frame's shorter side."""
        if self.box is None or not self.frame_w:
            return 0.0
        return (self.box[2] - self.box[0]) * self.frame_w / min(self.frame_w, self.frame_h)

    @property
    def face_px(self) -> float:
        return 0.0 if self.box is None else (self.box[2] - self.box[0]) * self.frame_w

    @property
    def centre(self) -> tuple[float, float]:
        if self.box is None:
            return (0.5, 0.5)
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    @property
    def eyes_closed(self) -> float:
        """How closed the more open eye is: both eyes must close for this to rise."""
        return min(self.eye_closure_left, self.eye_closure_right)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FrameSignals:
        data = dict(data)
        if data.get("box") is not None:
            data["box"] = tuple(data["box"])
        return cls(**data)


def head_angles(matrix: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from MediaPipe's facial transformation matrix."""
    r = matrix[:3, :3]
    yaw = math.degrees(math.atan2(float(r[0, 2]), float(r[2, 2])))
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, float(r[1, 2])))))
    roll = math.degrees(math.atan2(float(r[1, 0]), float(r[0, 0])))
    return yaw, pitch, roll


# The landmarks the geometric signals read, gathered once per frame into plain floats: a handful of
# points measured with numpy calls on 2-vectors cost more in call overhead than in arithmetic.
_USED = tuple(dict.fromkeys(RIGHT_EYE + LEFT_EYE + MOUTH_CORNERS + INNER_LIPS + RIGHT_EYE_CENTRE_POINTS + LEFT_EYE_CENTRE_POINTS))


def _eye_aspect_ratio(px: dict[int, tuple[float, float]], eye: tuple[int, ...]) -> float:
    p1, p2, p3, p4, p5, p6 = (px[i] for i in eye)
    width = math.dist(p1, p4)
    if width <= 1e-6:
        return 0.0
    return (math.dist(p2, p6) + math.dist(p3, p5)) / (2.0 * width)


def _midpoint(px: dict[int, tuple[float, float]], pair: tuple[int, int]) -> tuple[float, float]:
    (x0, y0), (x1, y1) = px[pair[0]], px[pair[1]]
    return ((x0 + x1) / 2.0, (y0 + y1) / 2.0)


def face_box(points: np.ndarray) -> tuple[float, float, float, float]:
    # x and y each in a contiguous row first: numpy's min(axis=0) over the two strided columns of the
    # 478 x 3 landmarks took 22 us of the frame's signals, a copy and min(axis=1) 3 (the same values).
    columns = np.ascontiguousarray(points[:, :2].T)
    (x0, y0), (x1, y1) = columns.min(axis=1).tolist(), columns.max(axis=1).tolist()
    return (max(0.0, x0), max(0.0, y0), min(1.0, x1), min(1.0, y1))


def face_luma_stats(rgb: np.ndarray, box: tuple[float, float, float, float]) -> tuple[float, float]:
    """(mean brightness, Laplacian variance at a 96 px face width) of the luma of the face region of an
    RGB image. Only the face is converted to grey: the whole frame's luma was a cost of every frame."""
    import cv2

    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = int(box[0] * w), int(box[1] * h), int(math.ceil(box[2] * w)), int(math.ceil(box[3] * h))
    if (y1 - y0) * (x1 - x0) < 16:  # the box is clipped to the frame: this is the crop's pixel count
        return 0.0, 0.0
    crop = cv2.cvtColor(rgb[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    scale = 96.0 / max(1, crop.shape[1])
    small = cv2.resize(crop, (96, max(1, int(round(crop.shape[0] * scale)))), interpolation=cv2.INTER_AREA)
    brightness = cv2.mean(small)[0]
    _, deviation = cv2.meanStdDev(cv2.Laplacian(small, cv2.CV_32F))
    return brightness, float(deviation[0, 0]) ** 2


def frame_signals(t: float, faces: list[FaceLandmarks], rgb: np.ndarray) -> FrameSignals:
    """Signals of the first (most prominent) face; `rgb` is the frame, for light and focus."""
    h, w = rgb.shape[:2]
    if not faces:
        return FrameSignals(t=t, face_count=0, frame_w=w, frame_h=h)
    face = faces[0]
    points = face.points
    px = {i: (x * w, y * h) for i, (x, y) in zip(_USED, points[_USED, :2].tolist(), strict=True)}
    box = face_box(points)
    yaw, pitch, roll = head_angles(face.matrix)
    # MediaPipe's blendshape "eyeBlinkLeft" is the eye on the image's left, i.e. the person's right eye.
    closure_right = face.blendshapes.get("eyeBlinkLeft", 0.0)
    closure_left = face.blendshapes.get("eyeBlinkRight", 0.0)
    ear = (_eye_aspect_ratio(px, RIGHT_EYE) + _eye_aspect_ratio(px, LEFT_EYE)) / 2.0
    mouth_w = math.dist(px[MOUTH_CORNERS[0]], px[MOUTH_CORNERS[1]])
    lip_gap = math.dist(px[INNER_LIPS[0]], px[INNER_LIPS[1]])
    inter_ocular = math.dist(_midpoint(px, RIGHT_EYE_CENTRE_POINTS), _midpoint(px, LEFT_EYE_CENTRE_POINTS))
    brightness, sharpness = face_luma_stats(rgb, box)
    return FrameSignals(
        t=t,
        face_count=len(faces),
        frame_w=w,
        frame_h=h,
        box=box,
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        eye_closure_left=float(closure_left),
        eye_closure_right=float(closure_right),
        ear=ear,
        jaw_open=float(face.blendshapes.get("jawOpen", 0.0)),
        mouth_open_ratio=lip_gap / mouth_w if mouth_w > 1e-6 else 0.0,
        smile=(face.blendshapes.get("mouthSmileLeft", 0.0) + face.blendshapes.get("mouthSmileRight", 0.0)) / 2.0,
        mouth_width=mouth_w / inter_ocular if inter_ocular > 1e-6 else 0.0,
        brightness=brightness,
        sharpness=sharpness,
    )
