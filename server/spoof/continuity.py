"""Cuts in a stream: footage spliced together, one piece per prompt (issue 24 item 3).

A live camera is continuous: from one analysed frame to the next the picture changes a little, or over
several frames when the person moves or the hand shakes. A stream assembled from pieces of real footage
jumps at every cut, in one frame (the background, the light, the face's place and size all at once), then
goes on smoothly. So each consecutive pair of analysed frames gets a step: the mean grey change of a small
thumbnail of the whole frame, after the best small shift (a shaking camera moves the picture; a cut
changes it), and a cut is a step far above the stream's own usual step AND above both its neighbours (an
isolated jump, not a movement). Steps across a gap in the frames (a network stall) are not judged. Pure and
cheap (a 32x24 thumbnail per analysed frame); calibrated with `python -m realname_tools.splices
calibrate` (docs/anti-spoofing.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

import numpy as np

THUMB_SIZE = (32, 24)  # width, height: whatever the frame's shape, steps are compared within one stream
MAX_SHIFT = 2  # thumbnail pixels (~6 % of the frame) a shaking camera may move the picture between frames


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """The frame as a small grey float image (0-255)."""
    import cv2

    # Nearest to 160 px first: a quarter of the cost of one area resize of the whole frame, the same steps.
    coarse = cv2.resize(rgb, (THUMB_SIZE[0] * 5, THUMB_SIZE[1] * 5), interpolation=cv2.INTER_NEAREST)
    small = cv2.resize(coarse, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
    return small @ np.float32([0.299, 0.587, 0.114])


def shifted_difference(before: np.ndarray, after: np.ndarray, reach: int = MAX_SHIFT) -> float:
    """The smallest mean absolute difference of the two thumbnails over shifts of up to `reach` pixels."""
    h, w = before.shape
    best = float("inf")
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            a = before[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)]
            b = after[max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)]
            best = min(best, float(np.abs(a - b).mean()))
    return best


@dataclass(frozen=True)
class Step:
    t: float  # the later frame's time
    dt: float  # seconds since the earlier one
    change: float  # grey levels (shifted_difference)


@dataclass
class ContinuityTracker:
    """Fed every analysed frame; keeps only the last thumbnail and one small step a frame."""

    steps: list[Step] = field(default_factory=list)
    _last: tuple[float, np.ndarray] | None = None

    def add(self, t: float, rgb: np.ndarray) -> None:
        thumb = thumbnail(rgb)
        if self._last is not None and t > self._last[0]:
            self.steps.append(Step(t, t - self._last[0], shifted_difference(self._last[1], thumb)))
        self._last = (t, thumb)


@dataclass(frozen=True)
class CutLimits:
    """A step is a cut when it is over `floor` grey levels, `times` the stream's median step and
    `isolation` times the median of the steps around it (`around` on each side, repeated frames left out:
    a video that repeats frames moves in bigger steps between the repeats), and its frames are no more than
    `max_gap` usual intervals apart."""

    floor: float = 2.0
    times: float = 5.0
    isolation: float = 4.0
    around: int = 3
    repeat: float = 0.25  # of the median step: a repeated frame, not a neighbour
    max_gap: float = 2.5
    min_steps: int = 10


def cuts(steps: list[Step], limits: CutLimits = CutLimits()) -> list[float]:
    """Times of the steps that are cuts."""
    if len(steps) < limits.min_steps:
        return []
    usual = median(s.change for s in steps)
    interval = median(s.dt for s in steps)
    reach = 3 * limits.around
    found = []
    for i, step in enumerate(steps):
        held = 0  # frames repeated just before this one: its change is the movement of that many more intervals
        while held < i and steps[i - 1 - held].change < limits.repeat * usual:
            held += 1
        change = step.change / (1 + held)
        if step.dt > limits.max_gap * interval or change < max(limits.floor, limits.times * usual):
            continue
        before = [s.change for s in reversed(steps[max(0, i - reach) : i]) if s.change >= limits.repeat * usual][: limits.around]
        after = [s.change for s in steps[i + 1 : i + 1 + reach] if s.change >= limits.repeat * usual][: limits.around]
        local = median(before + after) if before + after else usual
        if change >= limits.isolation * local:
            found.append(step.t)
    return found
