"""Between the landmarker's frames, whether the eyes or the face changed: a cue from the luma plane alone.
Pure (NumPy, OpenCV).

The landmarker is the cost of a frame, and two steps of a check needed it on every frame the page sends:
the blink awaited (100-400 ms: at every second frame of the page's 20, a short blink fell between two
analysed frames in 2 of 15 live checks through Chromium) and the neutral stretch (its frames make the
baseline and decide the moment of the ask: at every second frame, a blink in the stretch and the talking
face of a clip changed verdicts). Either may run the landmarker at a lower rate (rates.py: the stretch does;
the blink at every second frame, as live checks still missed 1 blink in 10 at 5), and each frame received in
between is compared with the last analysed frame whose face had open eyes, in that frame's boxes: where
the eyes changed (a lid closing over the dark of the eye), or in the neutral stretch where the face did
(talking, a movement starting), the frame is analysed whatever the rate. A closed eye stays changed
against the open reference, so every frame of a blink is analysed from the first one the cue sees until
the eyes are open again. Each patch is compared after its own mean is taken out (a camera's exposure
shifts the whole face); for the eyes the less changed one decides (a blink closes both).

The cue only adds frames to the landmarker's, it never stands in for one: no verdict is taken from it,
and a frame it lets go by is one where the face looks as it did on an analysed frame.
About 0.2 ms a frame received (0.2-0.6 ms measured on the loaded 2-core machine), only while one of the
two steps is under way, and as much for the reference per analysed frame (the landmarker: 8-15 ms).
"""

from __future__ import annotations

import numpy as np

from . import rates
from .challenges import Challenge
from .signals import LEFT_EYE, RIGHT_EYE

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in the luma plane's pixels

# Calibrated with `python -m realname_tools.change_watch ../shared/media/videos` and the step rates'
# replay (docs/benchmarks.md): grey levels of mean change, an eye patch and the face's thumbnail.
EYE_LEVEL = 6.0
FACE_LEVEL = 3.0
EYE_MARGIN = 0.25  # each side, in eye widths: the lids and the brow's edge, not the whole face
EYE_HEIGHT = 0.8  # the patch's height in eye widths (the eye opening is a third of its width)
FACE_THUMB = 32  # the face box is compared as a square thumbnail of this many pixels a side
BLINK = Challenge.BLINK.value  # the blink awaited
WATCHED = (BLINK, rates.NEUTRAL)  # the steps whose skipped frames are watched
_EYES = (np.array(RIGHT_EYE), np.array(LEFT_EYE))


def eye_boxes(points: np.ndarray, width: int, height: int) -> tuple[Box, Box] | None:
    """Both eyes' boxes in a `width` x `height` plane, from landmarks normalised to the frame (None: an eye
    too small to judge)."""
    boxes = []
    for eye in _EYES:
        xs, ys = points[eye, 0] * width, points[eye, 1] * height
        eye_w = float(xs.max() - xs.min())
        if eye_w < 6:
            return None
        cx, cy = _mean(xs), _mean(ys)
        half_w, half_h = eye_w * (0.5 + EYE_MARGIN), eye_w * EYE_HEIGHT / 2
        box = _clipped(cx - half_w, cy - half_h, cx + half_w, cy + half_h, width, height)
        if box is None:
            return None
        boxes.append(box)
    return boxes[0], boxes[1]


def face_box(points: np.ndarray, width: int, height: int) -> Box | None:
    xs, ys = points[:, 0] * width, points[:, 1] * height
    return _clipped(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()), width, height)


def _clipped(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> Box | None:
    box = max(0, int(x0)), max(0, int(y0)), min(width, int(x1) + 1), min(height, int(y1) + 1)
    return box if box[2] - box[0] >= 4 and box[3] - box[1] >= 3 else None


def _mean(a: np.ndarray) -> float:
    """`a.mean()` of a float32 array, the same value (numpy's float32 sum over the count, divided in float64
    and rounded to float32) without ndarray.mean's Python layer, which cost more than the sum on patches
    this small; six of them run for every frame received in a watched step."""
    return float(np.float32(float(np.add.reduce(a, axis=None)) / a.size)) if a.size else float("nan")


def _centred(patch: np.ndarray) -> np.ndarray:
    patch = patch.astype(np.float32)
    patch -= _mean(patch)  # its own copy: in place
    return patch


def eye_patches(luma: np.ndarray, boxes: tuple[Box, Box]) -> tuple[np.ndarray, np.ndarray]:
    """Each eye's patch, its mean taken out."""
    return _centred(luma[boxes[0][1] : boxes[0][3], boxes[0][0] : boxes[0][2]]), _centred(luma[boxes[1][1] : boxes[1][3], boxes[1][0] : boxes[1][2]])


def face_thumb(luma: np.ndarray, box: Box) -> np.ndarray:
    """The face box as FACE_THUMB x FACE_THUMB block means, its mean taken out. The box is trimmed (evenly
    on each side) to a whole number of blocks: an area resize is then its fast path, about 0.03 ms instead
    of 0.4."""
    import cv2

    x0, y0, x1, y1 = box
    h, w = (y1 - y0) // FACE_THUMB * FACE_THUMB, (x1 - x0) // FACE_THUMB * FACE_THUMB
    if not h or not w:  # a face under FACE_THUMB pixels (too small for the engine anyway)
        return _centred(cv2.resize(luma[y0:y1, x0:x1], (FACE_THUMB, FACE_THUMB), interpolation=cv2.INTER_LINEAR))
    top, left = y0 + (y1 - y0 - h) // 2, x0 + (x1 - x0 - w) // 2
    return _centred(cv2.resize(luma[top : top + h, left : left + w], (FACE_THUMB, FACE_THUMB), interpolation=cv2.INTER_AREA))


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    difference = a - b
    return _mean(np.abs(difference, out=difference))


def luma_plane(frame) -> np.ndarray:
    """The luma of an av.VideoFrame at its own size, without a colour conversion where it has a luma plane."""
    from ..spoof.continuity import LUMA_FIRST

    if frame.format.name not in LUMA_FIRST:
        return frame.to_ndarray(format="gray")
    plane = frame.planes[0]
    return np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width]


class Reference:
    """An analysed frame's eyes and face, as the frames after it are compared with them."""

    def __init__(self, luma: np.ndarray, points: np.ndarray) -> None:
        h, w = luma.shape[:2]
        self.shape = (h, w)
        self.eye_boxes = eye_boxes(points, w, h)
        self.face_box = face_box(points, w, h)
        self.eyes = None if self.eye_boxes is None else eye_patches(luma, self.eye_boxes)
        self.face = None if self.face_box is None else face_thumb(luma, self.face_box)

    def changes(self, luma: np.ndarray) -> tuple[float, float]:
        """The less changed eye's and the face's mean absolute change, in grey levels (inf: not comparable)."""
        if luma.shape[:2] != self.shape:
            return float("inf"), float("inf")  # another size: the boxes no longer fit
        eyes = float("inf")
        if self.eye_boxes is not None and self.eyes is not None:
            now = eye_patches(luma, self.eye_boxes)
            eyes = min(_mad(self.eyes[0], now[0]), _mad(self.eyes[1], now[1]))
        face = float("inf") if self.face_box is None or self.face is None else _mad(self.face, face_thumb(luma, self.face_box))
        return eyes, face


def asks(step: str, eyes: float, face: float) -> bool:
    """Whether a frame with these changes is analysed in `step` whatever its rate."""
    if step == BLINK:
        return eyes >= EYE_LEVEL
    return step == rates.NEUTRAL and (eyes >= EYE_LEVEL or face >= FACE_LEVEL)


def stretch_due(engine, t: float) -> bool:
    """In the neutral stretch, the first frame from which it has lasted its time: the ask's moment (and so
    the customer's time) does not wait for the stretch's rate. Once held (a stretch that waits on, for
    the light gate or a recorded prompt), its rate again."""
    held_from = engine.neutral.held_from()
    return held_from is not None and engine.neutral.frames[-1].t < held_from <= t and engine.step() == rates.NEUTRAL


def watched_step(engine) -> str | None:
    """The engine's (a LivenessEngine's) step when its skipped frames are watched, else None. A blink under
    way (the eyes closing: a movement, analysed at its rate) is watched as the blink awaited: its closed
    frames may be the one frame between two analysed ones."""
    step = engine.step()
    if step == rates.MOVING and engine.prompt().challenge == Challenge.BLINK:
        return BLINK
    return step if step in WATCHED else None


def reference_frame(engine, s) -> bool:
    """Whether an analysed frame (FrameSignals) may be the reference: one face, both eyes open, within half
    a blink's rise of the person's own open eyes once known (a lid half closed is no reference: the closed
    eye would change less from it)."""
    th, b = engine.th, engine.baseline
    return s.face_count == 1 and s.eyes_closed < (th.eyes_closed if b is None else min(th.eyes_closed, b.eyes_closed + th.eyes_closed_rise / 2))


class ChangeWatch:
    """The reference (the last analysed frame with one face and open eyes) and the cue for each frame
    received after it. Set from the analysis thread, read from the receiving one: replaced whole."""

    def __init__(self) -> None:
        self.reference: Reference | None = None

    def set_reference(self, luma: np.ndarray, points: np.ndarray) -> None:
        self.reference = Reference(luma, points)

    def clear(self) -> None:
        self.reference = None

    def asks(self, step: str | None, luma_of) -> bool:
        """Whether the frame (its luma from `luma_of()`) is analysed whatever the rate (False without a
        watched step or a reference: the rate decides alone)."""
        reference = self.reference
        if step is None or reference is None:
            return False
        return asks(step, *reference.changes(luma_of()))
