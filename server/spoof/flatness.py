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


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Least-squares homography src -> dst (normalised DLT), None when degenerate. The DLT's null vector is
    taken as the eigenvector of its 9 x 9 normal matrix for the smallest eigenvalue rather than the last
    right singular vector of the 2N x 9 system: the same homography on normalised points (a frame's
    deformation within 1e-12 on the shared clips), for a third of the cost, up to 10 times a second a check."""

    def normaliser(p: np.ndarray) -> np.ndarray:
        centre = p.mean(axis=0)
        spread = np.sqrt(((p - centre) ** 2).sum(axis=1)).mean()
        s = _SQRT2 / spread if spread > 1e-9 else 1.0
        return np.array([[s, 0, -s * centre[0]], [0, s, -s * centre[1]], [0, 0, 1]])

    ts, td = normaliser(src), normaliser(dst)
    a = np.c_[src, np.ones(len(src))] @ ts.T
    b = np.c_[dst, np.ones(len(dst))] @ td.T
    zeros = np.zeros((len(a), 3))
    rows = np.vstack([np.hstack([a, zeros, -b[:, :1] * a]), np.hstack([zeros, a, -b[:, 1:2] * a])])
    normal = rows.T @ rows
    if not np.isfinite(normal).all():
        return None
    try:
        _, vectors = np.linalg.eigh(normal)
    except np.linalg.LinAlgError:
        return None
    h = np.linalg.inv(td) @ vectors[:, 0].reshape(3, 3) @ ts
    return None if abs(h[2, 2]) < 1e-12 else h / h[2, 2]


def frame_deformation(reference: np.ndarray, current: np.ndarray) -> float | None:
    """How far `current` (N x 2 px) departs from the best homography of `reference`, in eye spans."""
    span = float(np.linalg.norm(current[_SCALE[0]] - current[_SCALE[1]]))
    if span < MIN_EYE_SPAN_PX:
        return None
    h = _homography(reference, current)
    if h is None:
        return None
    mapped = np.c_[reference, np.ones(len(reference))] @ h.T
    if np.any(np.abs(mapped[:, 2]) < 1e-9):
        return None
    residual = np.linalg.norm(mapped[:, :2] / mapped[:, 2:3] - current, axis=1)
    return _percentile(residual, POINT_QUANTILE) / span


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
