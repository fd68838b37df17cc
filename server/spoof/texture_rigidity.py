"""A photo warped to turn: the face's texture moves rigidly with its landmarks (issue 24 item 3).

A puppet made from one still photo (its face mesh rotated in 3D, the picture warped triangle by triangle
to follow) can only move the pixels it has: the turned face is the neutral face, stretched. A turning
head does more: its far side slips behind the nose and the cheek, the near side shows skin and ear the
neutral view did not, and its shading changes with its angle to the light. So the face of the check's
neutral frame is warped (piecewise affine, on MediaPipe's landmarks) onto the landmarks of each turned
frame, the remaining misalignment (the landmarker's own error, the same for a puppet and a person) is
taken out by a dense optical flow on a small canvas, and what is left is compared: the mean absolute
difference of the two faces, each normalised to zero mean and unit spread (a brightness or contrast
change of the camera does not count), after a slight blur. A warped photo leaves little but noise and
compression; a head that turned leaves its new view (calibration: docs/anti-spoofing.md). The check's
value is the median over the furthest-turned half of its turned frames; too few turned frames (a check of blinks and smiles), or none
turned JUDGED_FROM_DEG or more, give none.

Computed in the analysis worker on frames it has already landmarked, only when the face is turned away
from its neutral pose (at most MAX_SAMPLES a check, one every SAMPLE_GAP_S): 15-25 ms each on a 96 px
canvas on this 2-core machine at a load of 10 (the landmarker takes about as long per frame). Calibrated with `python -m realname_tools.rigidity calibrate` (docs/anti-spoofing.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

import numpy as np

MESH_POINTS = 468  # the iris points are left out
CANVAS_W = 96  # the turned face's landmark box is compared at this width
DETAIL_SIGMA = 2.0  # canvas pixels: finer detail is noise and compression
CROP_MARGIN = 0.15  # of the face's size, kept around the landmarks of the neutral face
MIN_FACE_PX = 60.0  # a smaller face (landmark box width, analysis pixels) is not compared
# Triangles with two corners or more on these (the eyes' openings, the inner lips) are left out: a blink
# or a word changes them in a puppet too.
EYES_AND_LIPS = frozenset({
    33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7,
    263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249,
    78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95,
})
NEUTRAL_DEG = 4.0  # the neutral frame: within this of the check's baseline pose
MIN_ANGLE_DEG = 10.0  # a frame is compared when turned or nodded this far from the neutral frame
MAX_EYES_CLOSED = 0.4
SAMPLE_GAP_S = 0.05  # every frame of a movement under way (analysed at up to 20 a second)
MAX_SAMPLES = 20  # the first second or so of turned frames: a whole movement out, at 15-25 ms each
MIN_SAMPLES = 2  # a last challenge's turn is judged from its first frame past 10 degrees to its completion
# A check is judged only once a frame turned this far (a turn's threshold): nearer the neutral pose a real
# head's change is still small (a clean, evenly lit face: a median 0.14 between 10 and 12 degrees). Not
# higher: a puppet's nod through Chromium measured no more than 13.5 degrees.
JUDGED_FROM_DEG = 12.0
RIGID_BELOW = 0.155  # the check's median change under this: a warped photo (0.75 x the lowest genuine turn: docs/anti-spoofing.md)
# The limit rests on few people, and a real head's change grows with the angle: a check whose furthest frame
# turned less than this is sent to review, not refused (a genuine customer who barely turns is not rejected
# by a margin measured on five people); a puppet is not approved either way.
CLEAR_TURN_DEG = 18.0


@dataclass(frozen=True)
class NeutralFace:
    """The check's neutral face: a grey crop, its landmarks in the crop (x, y in pixels, z as x) and
    the triangles the comparison warps."""

    grey: np.ndarray  # float32
    points: np.ndarray  # (MESH_POINTS, 3)
    triangles: np.ndarray  # (n, 3) indices
    yaw: float
    pitch: float


@dataclass(frozen=True)
class RigiditySample:
    t: float
    angle_deg: float  # from the neutral pose
    change: float  # the texture's change after the warp (see the module's docstring)


@dataclass(frozen=True)
class Rigidity:
    """The check's turned frames compared with its neutral one: `change` is their median."""

    change: float
    samples: int
    max_angle_deg: float


def pixel_points(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """MediaPipe's normalised landmarks (478 x 3) as pixels of a width x height frame (z scaled as x)."""
    return np.asarray(points)[:MESH_POINTS].astype(np.float32) * np.float32([width, height, width])


def face_box(points: np.ndarray, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0 = points[:, 0].min(), points[:, 1].min()
    x1, y1 = points[:, 0].max(), points[:, 1].max()
    pad = margin * max(x1 - x0, y1 - y0)
    return (int(max(0, x0 - pad)), int(max(0, y0 - pad)), int(min(width, np.ceil(x1 + pad))), int(min(height, np.ceil(y1 + pad))))


def grey_of(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    import cv2

    x0, y0, x1, y1 = box
    return cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)


def mesh_triangles(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Delaunay triangles of the neutral face's landmarks (indices), without the eyes' and lips' openings."""
    import cv2

    placed = np.stack([np.clip(points[:, 0], 0, width - 1), np.clip(points[:, 1], 0, height - 1)], 1).astype(np.float32)
    index: dict[tuple[float, float], int] = {}
    subdiv = cv2.Subdiv2D((-1, -1, width + 2, height + 2))
    # The points and the triangles' corners are float32: as Python floats (tolist) they are exact, and
    # the same corner is the same key.
    for i, (x, y) in enumerate(placed.tolist()):
        index.setdefault((x, y), i)
        subdiv.insert((x, y))
    out = []
    for corners in subdiv.getTriangleList().reshape(-1, 3, 2).tolist():
        ids = [index.get((x, y)) for x, y in corners]
        if None in ids or len(set(ids)) < 3 or sum(i in EYES_AND_LIPS for i in ids) >= 2:
            continue
        out.append(ids)
    return np.array(out, dtype=np.int32).reshape(-1, 3)


def neutral_face(rgb: np.ndarray, points: np.ndarray, yaw: float, pitch: float) -> NeutralFace | None:
    """The neutral face of a frame (RGB) with its normalised landmarks; None when too small."""
    h, w = rgb.shape[:2]
    px = pixel_points(points, w, h)
    if np.ptp(px[:, 0]) < MIN_FACE_PX:
        return None
    box = face_box(px, CROP_MARGIN, w, h)
    grey = grey_of(rgb, box)
    local = px - np.float32([box[0], box[1], 0])
    triangles = mesh_triangles(local, grey.shape[1], grey.shape[0])
    return NeutralFace(grey, local, triangles, yaw, pitch) if len(triangles) else None


def affine_rows(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle, the affine map from its `source` corners to its `target` corners ((n, 3, 2) each) as
    (n, 6) rows (a, b, c, d, e, f: x' = a x + b y + c, y' = d x + e y + f), and whether it is usable."""
    ones = np.ones((*source.shape[:2], 1), np.float64)
    m = np.concatenate([source.astype(np.float64), ones], axis=2)  # (n, 3, 3)
    det = np.linalg.det(m)
    usable = np.abs(det) > 1e-6
    m[~usable] = np.eye(3)
    solved = np.linalg.solve(m, target.astype(np.float64))  # (n, 3, 2): columns for x' and y'
    return np.concatenate([solved[..., 0], solved[..., 1]], axis=1).astype(np.float32), usable


def texture_change(neutral: NeutralFace, rgb: np.ndarray, points: np.ndarray) -> float | None:
    """How much the face of `rgb` (with its normalised landmarks) differs from the neutral face warped
    onto it, once aligned (the module's docstring); None when too little of the face is comparable."""
    import cv2

    h, w = rgb.shape[:2]
    px = pixel_points(points, w, h)
    width = float(np.ptp(px[:, 0]))
    if width < MIN_FACE_PX:
        return None
    box = face_box(px, 0.0, w, h)
    scale = CANVAS_W / width
    canvas_h = int(np.ceil((box[3] - box[1]) * scale)) + 1
    here = (px[:, :2] - np.float32([box[0], box[1]])) * scale  # the turned face's landmarks on the canvas
    tris = neutral.triangles
    rows, usable = affine_rows(here[tris], neutral.points[tris, :2])  # canvas -> neutral crop
    area = np.abs(np.cross(here[tris[:, 1]] - here[tris[:, 0]], here[tris[:, 2]] - here[tris[:, 0]]))
    owner = np.full((canvas_h, CANVAS_W), -1, np.int32)
    depth = px[tris, 2].mean(axis=1)
    corners = np.round(here[tris]).astype(np.int32)
    drawn = usable & (area >= 1.0)
    order = np.argsort(-depth)  # far first: nearer triangles are drawn over them, as the head hides its far side
    order = order[drawn[order]]
    for k, triangle in zip(order.tolist(), list(corners[order]), strict=True):  # some 800 a frame: no per-triangle indexing
        cv2.fillConvexPoly(owner, triangle, k)
    inside = owner >= 0
    mask = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if mask.sum() < 0.25 * CANVAS_W * canvas_h:
        return None
    ys, xs = np.mgrid[0:canvas_h, 0:CANVAS_W].astype(np.float32)
    # Each pixel's triangle's row, zeros outside the triangles (owner -1: the row of zeros appended).
    m = np.concatenate([rows, np.zeros((1, 6), np.float32)])[owner]
    map_x = m[..., 0] * xs + m[..., 1] * ys + m[..., 2]
    map_y = m[..., 3] * xs + m[..., 4] * ys + m[..., 5]
    warped = cv2.remap(neutral.grey, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    to_canvas = np.float32([[scale, 0, 0], [0, scale, 0]])
    now = cv2.warpAffine(grey_of(rgb, box), to_canvas, (CANVAS_W, canvas_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # The landmarker's error, left after the warp, is the same for a puppet and a person: a dense flow
    # takes it out (and any movement the warp's straight triangles cannot follow); new texture and new
    # shading are left, which no small displacement reproduces.
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(
        np.clip(now, 0, 255).astype(np.uint8), np.clip(warped, 0, 255).astype(np.uint8), None)
    fx, fy = xs + flow[..., 0], ys + flow[..., 1]
    aligned = cv2.remap(warped, fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask &= cv2.remap(mask.astype(np.uint8), fx, fy, cv2.INTER_NEAREST) > 0
    if mask.sum() < 0.25 * CANVAS_W * canvas_h:
        return None
    # Sensor noise and compression are the whole change of a warped photo: a slight blur takes most of them
    # out, and leaves the larger-scale change of a turning head (σ 2: a fiftieth of the face's width).
    a, b = cv2.GaussianBlur(now, (0, 0), DETAIL_SIGMA)[mask], cv2.GaussianBlur(aligned, (0, 0), DETAIL_SIGMA)[mask]
    return float(np.abs((a - a.mean()) / (a.std() + 1e-6) - (b - b.mean()) / (b.std() + 1e-6)).mean())


@dataclass
class RigidityTracker:
    """Fed each analysed frame with one face; takes the neutral face once the check's baseline pose is
    known, then compares turned frames with it."""

    neutral: NeutralFace | None = None
    samples: list[RigiditySample] = field(default_factory=list)

    def add(self, t: float, rgb: np.ndarray, points: np.ndarray, yaw: float, pitch: float, eyes_closed: float,
            baseline: tuple[float, float] | None) -> None:
        """`baseline`: the engine's neutral (yaw, pitch), None until known."""
        if eyes_closed > MAX_EYES_CLOSED:
            return
        if self.neutral is None:
            if baseline is not None and abs(yaw - baseline[0]) <= NEUTRAL_DEG and abs(pitch - baseline[1]) <= NEUTRAL_DEG:
                self.neutral = neutral_face(rgb, points, yaw, pitch)
            return
        angle = float(np.hypot(yaw - self.neutral.yaw, pitch - self.neutral.pitch))
        if angle < MIN_ANGLE_DEG or len(self.samples) >= MAX_SAMPLES or (self.samples and t - self.samples[-1].t < SAMPLE_GAP_S):
            return
        change = texture_change(self.neutral, rgb, points)
        if change is not None:
            self.samples.append(RigiditySample(t, angle, change))

    def result(self) -> Rigidity | None:
        if len(self.samples) < MIN_SAMPLES or max(s.angle_deg for s in self.samples) < JUDGED_FROM_DEG:
            return None
        # A real head's change grows with its angle, a warped photo's does not: the furthest-turned half is
        # judged. A fast last turn, cut short at its completion, is mostly frames just past 10 degrees.
        furthest = sorted(self.samples, key=lambda s: s.angle_deg)[len(self.samples) // 2 :]
        return Rigidity(median(s.change for s in furthest), len(self.samples), furthest[-1].angle_deg)
