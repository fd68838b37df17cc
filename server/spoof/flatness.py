"""How flat the face moves: the geometric cue a texture model cannot see.

A print (flat, tilted, shaken) or a still photo on a screen moves in the image by one homography: every
landmark of the face follows the same plane-to-plane map. A live head does not: a blink, a smile, an open
mouth deform it, and a turn or a nod shows parallax (the nose moves against the cheeks). The check asks
for exactly such movements, so over a genuine check the face mesh departs from one homography; over a
flat one it does not, however the sheet is held. Pure logic over MediaPipe landmarks (pixels).

Per frame: the homography that best maps the reference frame's landmarks (the first of the check) onto
this frame's, fitted by least squares, and the 98th percentile of the points' residuals over the eye
span (outer eye corners). For the check: `deformation`, the second-highest of the frames' values kept
(one glitch of the landmarker does not make a print live). A screen replaying a video of the person
deforms as the person did: this cue is meant for prints and stills; the texture model is meant for screens.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ..liveness.challenges import Challenge
from ..liveness.engine import ChallengeRecord
from ..liveness.rates import ON_TIME

# A spread subset of MediaPipe's face mesh (every third point, plus the eye corners that give the scale
# and the eyelids and lips that a blink or a smile moves).
_EYE_CORNERS = (33, 263)
SHAPE_POINTS: tuple[int, ...] = tuple(sorted(set(range(0, 468, 3)) | {33, 263, 159, 145, 386, 374, 13, 14, 61, 291, 1, 152}))
_SCALE = (SHAPE_POINTS.index(_EYE_CORNERS[0]), SHAPE_POINTS.index(_EYE_CORNERS[1]))
# A frame a little early is on time (rates.ON_TIME, as analyzer.frame_due has it): a movement analysed at 12
# fps of the 20 the page sends arrives every 0.1 s give or take the clock's rounding, and a strict 0.1 s took
# only every second one, so a quick turn's turned frames were missed (docs/anti-spoofing.md "Flatness on the
# checks it judges"). It keeps the frames eval-pad feeds it (every second frame of a 25 or 30 fps clip) as they were.
POINT_QUANTILE = 98.0  # a blink moves only the eyelids, a few per cent of the points: a lower quantile would not see it
MIN_EYE_SPAN_PX = 12.0
_SQRT2 = math.sqrt(2)
_SHAPE_INDEX = np.array(SHAPE_POINTS)  # an index array made once: a tuple or list is converted on every call


def shape_of(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """The subset of a face's normalised landmarks (478 x 3) in pixels (N x 2)."""
    return np.asarray(points)[_SHAPE_INDEX, :2] * np.array([width, height], dtype=np.float64)


def _normalised(p: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Hartley's normalisation: the points moved to their centroid and scaled to a mean distance of sqrt(2)
    from it (the points, the scale, the centroid)."""
    centre = np.add.reduce(p, axis=0) / len(p)
    moved = p - centre
    spread = float(np.add.reduce(np.sqrt(np.einsum("ij,ij->i", moved, moved)))) / len(p)  # ndarray.mean's arithmetic
    scale = _SQRT2 / spread if spread > 1e-9 else 1.0
    moved *= scale
    return moved, scale, centre


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Least-squares homography src -> dst (normalised DLT), None when degenerate.

    The DLT's null vector is the eigenvector of the 9 x 9 normal matrix of its 2N x 9 system for the
    smallest eigenvalue, not the last right singular vector of the system itself: the same homography
    (a frame's deformation within 1e-12 of the SVD's on the shared clips) at a third of the cost, the
    points being normalised (this runs up to 10 times a second per check)."""
    a, s_src, c_src = _normalised(src)
    b, s_dst, c_dst = _normalised(dst)
    n = len(a)
    rows = np.zeros((2, n, 9))  # x rows, then y rows: [a, 1, 0, 0, 0, -bx (a, 1)] and [0, 0, 0, a, 1, -by (a, 1)]
    rows[0, :, :2] = a
    rows[0, :, 2] = 1.0
    rows[1, :, 3:6] = rows[0, :, :3]
    np.multiply(rows[0, :, :3], -b.T[:, :, None], out=rows[:, :, 6:])
    rows = rows.reshape(2 * n, 9)
    normal = rows.T @ rows
    if not np.isfinite(normal).all():
        return None
    try:
        _, vectors = np.linalg.eigh(normal)
    except np.linalg.LinAlgError:
        return None
    # Back to pixels: inv(T_dst) @ h @ T_src, with T = [[s, 0, -s cx], [0, s, -s cy], [0, 0, 1]] (plain floats:
    # numpy's call overhead on 3 x 3 is most of the cost).
    h0, h1, h2, h3, h4, h5, h6, h7, h8 = vectors[:, 0].tolist()
    (scx, scy), (dcx, dcy) = c_src.tolist(), c_dst.tolist()
    h0, h1, h3, h4, h6, h7 = h0 * s_src, h1 * s_src, h3 * s_src, h4 * s_src, h6 * s_src, h7 * s_src
    h2, h5, h8 = h2 - (h0 * scx + h1 * scy), h5 - (h3 * scx + h4 * scy), h8 - (h6 * scx + h7 * scy)
    h0, h1, h2 = h0 / s_dst + dcx * h6, h1 / s_dst + dcx * h7, h2 / s_dst + dcx * h8
    h3, h4, h5 = h3 / s_dst + dcy * h6, h4 / s_dst + dcy * h7, h5 / s_dst + dcy * h8
    if abs(h8) < 1e-12:
        return None
    return np.array([[h0, h1, h2], [h3, h4, h5], [h6, h7, h8]]) / h8


def frame_deformation(reference: np.ndarray, current: np.ndarray) -> float | None:
    """How far `current` (N x 2 px) departs from the best homography of `reference`, in eye spans."""
    dx, dy = (current[_SCALE[0]] - current[_SCALE[1]]).tolist()
    span = math.sqrt(dx * dx + dy * dy)
    if span < MIN_EYE_SPAN_PX:
        return None
    h = _homography(reference, current)
    if h is None:
        return None
    w = reference @ h[2, :2] + h[2, 2]
    if np.any(np.abs(w) < 1e-9):
        return None
    mapped = reference @ h[:2, :2].T
    mapped += h[:2, 2]
    mapped /= w[:, None]
    mapped -= current
    return _percentile(np.sqrt(np.einsum("ij,ij->i", mapped, mapped)), POINT_QUANTILE) / span


def _percentile(values: np.ndarray, q: float) -> float:
    """np.percentile(values, q) (its default linear interpolation, the same arithmetic) of a 1-D array,
    without its general machinery (a sort of 165 values is a microsecond; np.percentile took 20)."""
    ordered = np.sort(values)
    if math.isnan(ordered[-1]):
        return math.nan
    index = (len(ordered) - 1) * (q / 100)
    below = math.floor(index)
    gamma = index - below
    low, high = float(ordered[below]), float(ordered[min(below + 1, len(ordered) - 1)])
    step = high - low
    return high - step * (1 - gamma) if gamma >= 0.5 else low + step * gamma


def check_deformation(values: list[float]) -> float | None:
    """The check's deformation: the second-highest frame value (None: fewer than two frames measured)."""
    if len(values) < 2:
        return None
    return float(sorted(values)[-2])


# Challenges only a face that deforms can pass: a flat print or still cannot blink, smile or open its mouth.
DEFORMING = frozenset({Challenge.BLINK, Challenge.SMILE, Challenge.OPEN_MOUTH})


def deformation_for_rule(deformation: float | None, challenges: Iterable[ChallengeRecord]) -> float | None:
    """What a live check hands the PAD rule: None (not measured) once the check has passed a deforming
    challenge, since it has then seen the face deform, and a short check (one blink in 1.5 s) measures
    too little for the threshold fitted on whole clips (its blink is a frame or two). Flatness then acts
    where it is needed: on checks of head turns and nods, which a tilted print can mimic."""
    if any(c.passed and c.type in DEFORMING for c in challenges):
        return None
    return deformation


@dataclass
class FlatnessTracker:
    """Live: fed the shape of every analysed frame with one face, at most one every `gap_s`."""

    gap_s: float = 0.1
    reference: np.ndarray | None = None
    values: list[float] = field(default_factory=list)
    _last_t: float | None = None

    def due(self, t: float) -> bool:
        return self._last_t is None or t - self._last_t >= ON_TIME * self.gap_s

    def add(self, t: float, shape: np.ndarray) -> None:
        if not self.due(t):
            return
        self._last_t = t
        if self.reference is None:
            self.reference = shape
            return
        value = frame_deformation(self.reference, shape)
        if value is not None:
            self.values.append(value)

    @property
    def deformation(self) -> float | None:
        return check_deformation(self.values)
