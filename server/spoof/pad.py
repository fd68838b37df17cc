"""Passive anti-spoofing over a check: which frames to score, how to aggregate, what to decide.

Pure logic: the frames themselves are opaque items here; the analyzer keeps them and a worker scores them.
Genuine scores dip during strong head turns and when looking up, so only near-frontal frames of exactly
one sharp face are scored, spread over the whole check, and the verdict is their median.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from statistics import median
from typing import Generic, TypeVar

from ..liveness.engine import LivenessResult
from ..reasons import Reason

T = TypeVar("T")


class PadVerdict(StrEnum):
    PASS = "pass"
    REVIEW = "review"  # a score in the grey band: a person should look
    ATTACK = "attack"  # fails the check with reason `presentation_attack`
    UNSCORED = "unscored"  # no usable frame (non-response)
    UNAVAILABLE = "unavailable"  # no PAD model configured


@dataclass(frozen=True)
class PadThresholds:
    """The PAD decision, one rule for the live path and `eval-pad`.

    Median live score below `attack` is an attack; below `review` goes to review; else a pass. Two cues
    temper it: a face that moved as one plane over the check (`deformation` below `flat_below`, see
    flatness.py) is at best `review`, since a print or a still moves so and the texture model can call a
    close print live; a noisy face (median noise after the exposure rule above `noisy_above`: a dim room's
    sensor noise, brightened) is never rejected on its score alone, it goes to review. That noise hides the
    texture the model reads, dragging a genuine face's score down and pushing some attacks' up, so a noisy
    face is held to its own review threshold `noisy_review` (0: the same as `review`), fitted on noisy
    genuine faces against every known attack. Noise, not face luma: darker skin in ordinary light is dark
    but clean, and is judged as any other face. A face with less fine detail over its noise than
    `detail_below` (models/pad.py `detail_level`: a print filmed again has lost the fine edges a live
    face shows) is at best review as well. So is a live check whose frames scored after its challenges
    started are noisy (`check_noise`, their median, above `noisy_above`): lit for the light gate, then
    dim, the lit frames before the start must not carry the check (liveness/light.py).
    """

    attack: float = 0.4
    review: float = 0.7
    source: str = "built-in defaults"
    flat_below: float = 0.0  # 0: the flatness cue is off
    noisy_above: float = 0.0  # grey levels (models/pad.py Exposure.noise); 0: a noisy face is judged as any other
    noisy_review: float = 0.0  # 0: a noisy face has the same review threshold as any other
    detail_below: float = 0.0  # 0: the detail cue is off

    def __post_init__(self) -> None:
        if not 0.0 <= self.attack <= self.review <= 1.0:
            raise ValueError("PAD thresholds need 0 <= attack <= review <= 1")
        if self.flat_below < 0 or self.noisy_above < 0 or self.detail_below < 0:
            raise ValueError("PAD flat_below, noisy_above and detail_below must be >= 0")
        if not 0.0 <= self.noisy_review <= 1.0:
            raise ValueError("PAD noisy_review must be within 0..1")

    def noisy(self, noise: float | None) -> bool:
        return noise is not None and self.noisy_above > 0 and noise > self.noisy_above

    def review_for(self, noise: float | None) -> float:
        """The review threshold a face of this noise is held to."""
        return (self.noisy_review or self.review) if self.noisy(noise) else self.review

    def decide(self, score: float | None, deformation: float | None = None, noise: float | None = None,
               detail: float | None = None, check_noise: float | None = None) -> PadVerdict:
        if score is None:
            return PadVerdict.UNSCORED
        if score < self.attack:
            return PadVerdict.REVIEW if self.noisy(noise) else PadVerdict.ATTACK
        if score < self.review_for(noise):
            return PadVerdict.REVIEW
        if deformation is not None and deformation < self.flat_below:
            return PadVerdict.REVIEW
        if detail is not None and detail < self.detail_below:
            return PadVerdict.REVIEW
        if self.noisy(check_noise):
            return PadVerdict.REVIEW
        return PadVerdict.PASS

    def to_dict(self) -> dict:
        return {"attack": self.attack, "review": self.review, "source": self.source, "flat_below": self.flat_below,
                "noisy_above": self.noisy_above, "noisy_review": self.noisy_review, "detail_below": self.detail_below}


@dataclass(frozen=True)
class PadFramePolicy:
    """Which analysed frames are worth scoring, and how many are kept."""

    max_frames: int = 16  # cross-validated: more frames, a steadier median (8 before)
    min_gap_s: float = 0.2  # doubles each time the kept frames are thinned, so they stay spread
    max_yaw_deg: float = 10.0  # from the person's own neutral pose (or from frontal before it is known)
    max_pitch_deg: float = 10.0
    min_sharpness: float = 12.0  # the engine's own focus floor
    min_face_px: float = 64.0
    min_brightness: float = 0.0  # mean face luma: a face too dark or burnt out shows the model nothing
    max_brightness: float = 255.0

    def wants(self, face_count: int, yaw: float, pitch: float, sharpness: float, face_px: float,
              reference: tuple[float, float] | None, brightness: float | None = None) -> bool:
        ref_yaw, ref_pitch = reference or (0.0, 0.0)
        return (
            face_count == 1
            and abs(yaw - ref_yaw) <= self.max_yaw_deg
            and abs(pitch - ref_pitch) <= self.max_pitch_deg
            and sharpness >= self.min_sharpness
            and face_px >= self.min_face_px
            and (brightness is None or self.min_brightness <= brightness <= self.max_brightness)
        )


# A browser's frames come at its capture clock's times, a few ms either side of the analysed rate's: a frame
# 0.199 s after the last chosen one was put off a whole frame (0.3 s instead of 0.2 at 10 fps analysed).
TIMING_SLACK_S = 0.02


@dataclass
class SpreadSample(Generic[T]):
    """At most `limit` items at least `gap_s` apart (less TIMING_SLACK_S); when full, every other one is dropped and the gap
    doubles, so the kept items stay spread over the whole check with bounded memory.

    With `start`, the item `anchor_s` after it comes at once: none is chosen in the `gap_s` before that
    moment. The light gate may say lit only from frames of the stream from `LightGate.settle_s` on
    (liveness/light.py); a frame chosen just before then would only put the first one that can off."""

    limit: int
    gap_s: float
    items: list[tuple[float, T]] = field(default_factory=list)
    start: float | None = None  # the stream's first analysed frame (the engine's t0)
    anchor_s: float = 0.0

    def due(self, t: float) -> bool:
        if self.start is not None and t - self.start < self.anchor_s < t - self.start + self.gap_s:
            return False
        return not self.items or t - self.items[-1][0] >= self.gap_s - TIMING_SLACK_S

    def add(self, t: float, item: T) -> None:
        if not self.due(t):
            return
        self.items.append((t, item))
        if len(self.items) > self.limit:
            self.items = self.items[::2]
            self.gap_s *= 2

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class GateFrames:
    """The light gate's frames (liveness/light.py): the first `frames` frames from the sample's anchor (the
    gate's `settle_s`) on are scored as they come, not at the sample's spacing, so that the gate can say lit
    two analysed frames after the stream has settled rather than two spacings. Those the sample does not
    choose are the gate's only: their noise is measured, their score is not the verdict's, so the sample,
    and the verdict the calibration describes, stay as they were. 0 frames: none."""

    frames: int = 0
    times: list[float] = field(default_factory=list)  # the gate's own frames (the sample's are in its items)

    def due(self, t: float, sample: SpreadSample, counts=lambda item: True) -> bool:
        """Whether a frame at t, not due for the sample, is one the gate still needs (`counts`: whether a
        frame the sample chose from the anchor on is still to be scored)."""
        if self.frames <= 0 or sample.start is None or t - sample.start < sample.anchor_s:
            return False
        since = [at for at, item in sample.items if at - sample.start >= sample.anchor_s and counts(item)] + self.times
        return len(since) < self.frames and all(at < t for at in since)


AGGREGATES = ("median", "trimmed_mean", "logit_trimmed_mean")
DEFAULT_AGGREGATE = "median"
_LOGIT_CLIP = 1e-4


def logit(p: float) -> float:
    p = min(1 - _LOGIT_CLIP, max(_LOGIT_CLIP, p))
    return math.log(p / (1 - p))


def expit(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def aggregate(scores: list[float], method: str = DEFAULT_AGGREGATE) -> float | None:
    """One score for the check, robust to the odd frame caught mid-blink, mid-turn or in motion blur:
    the median, or the mean of the middle half (of the scores, or of their log-odds)."""
    if not scores:
        return None
    if method == "median":
        return float(median(scores))
    ordered = sorted(scores)
    cut = len(ordered) // 4
    middle = ordered[cut : len(ordered) - cut]
    if method == "trimmed_mean":
        return float(sum(middle) / len(middle))
    if method == "logit_trimmed_mean":
        return expit(sum(logit(p) for p in middle) / len(middle))
    raise ValueError(f"unknown PAD aggregate {method!r} (one of {', '.join(AGGREGATES)})")


@dataclass(frozen=True)
class PadResult:
    score: float | None  # aggregated live score, 0 (attack) .. 1 (live)
    frames_scored: int
    scores: tuple[float, ...]
    verdict: PadVerdict
    ms: float  # CPU time spent detecting and scoring, for the cost report
    frames_offered: int = 0  # candidate frames kept (some may have no face for the detector)
    deformation: float | None = None  # how far the face departed from one homography (flatness.py)
    face_luma: float | None = None  # median face luma of the scored frames, before the exposure rule
    face_noise: float | None = None  # median face noise of the scored frames, after the exposure rule
    face_detail: float | None = None  # median fine detail over noise of the scored faces (models/pad.py detail_level)
    check_noise: float | None = None  # live: median face noise of the frames scored after the challenges started

    @classmethod
    def of(cls, scores: list[float], thresholds: PadThresholds, ms: float, offered: int, deformation: float | None = None,
           lumas: list[float] | None = None, noises: list[float | None] | None = None,
           details: list[float | None] | None = None, check_noises: list[float | None] | None = None) -> PadResult:
        score = aggregate(scores)
        luma = float(median(lumas)) if lumas else None
        noise, detail, check_noise = median_of(noises), median_of(details), median_of(check_noises)
        return cls(score, len(scores), tuple(scores), thresholds.decide(score, deformation, noise, detail, check_noise), ms, offered, deformation,
                   luma, noise, detail, check_noise)

    @classmethod
    def unavailable(cls) -> PadResult:
        return cls(None, 0, (), PadVerdict.UNAVAILABLE, 0.0)

    def to_dict(self) -> dict:
        return {
            "score": None if self.score is None else round(self.score, 4),
            "verdict": self.verdict.value,
            "frames_scored": self.frames_scored,
            "frames_offered": self.frames_offered,
            "scores": [round(s, 4) for s in self.scores],
            "ms": round(self.ms, 1),
            "deformation": None if self.deformation is None else round(self.deformation, 4),
            "face_luma": None if self.face_luma is None else round(self.face_luma, 1),
            "face_noise": None if self.face_noise is None else round(self.face_noise, 2),
            "face_detail": None if self.face_detail is None else round(self.face_detail, 2),
            "check_noise": None if self.check_noise is None else round(self.check_noise, 2),
        }


def median_of(values: list[float | None] | None) -> float | None:
    """The median of the values measured (None: none was)."""
    known = [v for v in values or () if v is not None]
    return float(median(known)) if known else None


def apply_pad(result: LivenessResult, pad: PadResult) -> LivenessResult:
    """An attack verdict fails the check with `presentation_attack`, whatever the challenges said; the
    engine's own failure reason, if any, becomes the detail."""
    if pad.verdict != PadVerdict.ATTACK:
        return result
    detail = result.reason.value if result.reason is not None else None
    return replace(result, passed=False, reason=Reason.PRESENTATION_ATTACK, detail=detail)
