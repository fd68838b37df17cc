"""A check that replays an earlier one (issue 24 item 5): the face's movement, as a compact fingerprint.

A replay of an earlier check's footage (re-encoded, scaled, cropped, brighter, at another frame rate,
started at another point) shows the same face making the very same movements at the same moments:
every small turn, nod, blink and twitch of the earlier check, in the same order and rhythm. A new check
of the same person, even in the same room, is another performance: the same challenges, done with
other timing and other small movements. Appearance cannot tell these apart (the same face, light and
background), the movement can.

So each analysed frame gives a few numbers the landmarker already measured: head yaw, pitch and roll, the
eyes' closure (both eyes as one: a blink is one movement), the jaw, the smile, the mouth's opening, and the
face's place and size in face-widths (unchanged by scaling, and shifted as a whole by a crop, which the
comparison removes). They are resampled to 10 a second (a different frame rate does not matter) and kept
as float16: 200 bytes a second of check, never a frame. Two fingerprints match when, at some time offset
(the replay may start anywhere), they share at least `min_overlap_s` and, cut into parts of `part_s`, at
least `min_parts` parts move and the lower half of the parts' scores (each the mean correlation of the
measures that move in it) averages `similarity` or more. Smooth movements of two different checks often
look alike over a second or two (a turn is a turn); the very same moments over several seconds do not. A
still stretch, or a blink of a still face, matches nothing (too little moves to tell), nor does a check
shorter than the overlap. Calibrated on the shared clips and their re-encoded, scaled, cropped copies
(docs/anti-spoofing.md). Pure: numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..liveness.signals import FrameSignals
from .signals import Action, Level, RiskSignal, SignalCode

RATE_HZ = 10.0  # samples a second in a fingerprint
MAX_GAP_S = 0.35  # frames further apart than this leave a gap (no sample), not an interpolation
MAX_SECONDS = 60.0  # of a check kept in its fingerprint (600 samples, 12 KB at most)
# The landmarker's noise on each measure (yaw, pitch, roll in degrees; closures, jaw, smile 0..1; mouth
# opening over width; centre in face-widths; log of the face's size): the unit each is compared in.
SCALES = np.array([1.0, 1.0, 0.5, 0.05, 0.03, 0.03, 0.02, 0.01, 0.01, 0.01], dtype=np.float64)
# The eyes close together: one measure for both, so that a blink is one movement, not two.
MEASURES = ("yaw", "pitch", "roll", "closure", "jaw", "smile", "mouth", "x", "y", "size")
VERSION = 1
CANDIDATES = 5  # the best offsets over the whole overlap, scored part by part


def measures(s: FrameSignals) -> list[float] | None:
    """The fingerprint's numbers for one analysed frame (None: not exactly one face)."""
    if s.face_count != 1 or s.box is None or not s.frame_w or not s.frame_h:
        return None
    x0, y0, x1, y1 = s.box
    size = max((x1 - x0) * s.frame_w, (y1 - y0) * s.frame_h)
    if size <= 1.0:
        return None
    cx, cy = (x0 + x1) / 2 * s.frame_w / size, (y0 + y1) / 2 * s.frame_h / size
    closure = (s.eye_closure_left + s.eye_closure_right) / 2
    return [s.yaw, s.pitch, s.roll, closure, s.jaw_open, s.smile, s.mouth_open_ratio, cx, cy, math.log(size)]


@dataclass
class FingerprintRecorder:
    """Fed every analysed frame's signals (cheap: a few floats a frame); `fingerprint()` at the end."""

    times: list[float] = field(default_factory=list)
    values: list[list[float]] = field(default_factory=list)

    def add(self, s: FrameSignals) -> None:
        if self.times and (s.t <= self.times[-1] or s.t - self.times[0] > MAX_SECONDS):
            return
        row = measures(s)
        if row is not None:
            self.times.append(s.t)
            self.values.append(row)

    def fingerprint(self) -> Fingerprint | None:
        return Fingerprint.of(self.times, self.values)


@dataclass(frozen=True)
class Fingerprint:
    samples: np.ndarray  # (n, len(MEASURES)) float, in SCALES units, at RATE_HZ; NaN rows are gaps

    @classmethod
    def of(cls, times: list[float], values: list[list[float]]) -> Fingerprint | None:
        """Resampled to RATE_HZ from the first frame (linear between frames at most MAX_GAP_S apart)."""
        if len(times) < 2:
            return None
        t = np.asarray(times, dtype=np.float64)
        v = np.asarray(values, dtype=np.float64) / SCALES
        grid = t[0] + np.arange(int((t[-1] - t[0]) * RATE_HZ) + 1) / RATE_HZ
        after = np.clip(np.searchsorted(t, grid), 1, len(t) - 1)
        t0, t1 = t[after - 1], t[after]
        w = np.clip((grid - t0) / np.maximum(t1 - t0, 1e-9), 0.0, 1.0)[:, None]
        samples = v[after - 1] * (1 - w) + v[after] * w
        samples[(t1 - t0) > MAX_GAP_S] = np.nan
        return cls(samples)

    def to_bytes(self) -> bytes:
        return bytes([VERSION]) + self.samples.astype("<f2").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint | None:
        if not data or data[0] != VERSION or (len(data) - 1) % (2 * len(MEASURES)):
            return None
        return cls(np.frombuffer(data, dtype="<f2", offset=1).reshape(-1, len(MEASURES)).astype(np.float64))

    @property
    def seconds(self) -> float:
        return len(self.samples) / RATE_HZ


@dataclass(frozen=True)
class ReplayLimits:
    """Measured on the shared genuine clips (docs/anti-spoofing.md, `python -m realname_tools.replays
    calibrate`): replays 0.858 and above, different checks (other clips, or another stretch of the same
    clip) 0.351 and below; random synthetic performances (tests/test_replay_fingerprint.py's) 0.736 and
    below in 12,720 pairs. Six seconds in three moving parts, so that a chance likeness of a few smooth
    movements is not taken for a replay: a false match fails a genuine customer."""

    similarity: float = 0.8  # the mean of the lower half of the parts' scores at the best offset
    min_overlap_s: float = 6.0  # seconds both fingerprints share at that offset
    moving: float = 2.0  # a measure moves when its spread exceeds this many noise units
    min_moving: int = 2  # measures that must move in a part (fewer: the part is too still to tell)
    part_s: float = 2.0  # the overlap is scored in parts this long
    min_parts: int = 3  # parts that move (fewer: too little movement to tell)
    # Offsets whose whole overlap scores below this are not scored part by part (the cost of a check's
    # search; at 0.8 the calibration lost no replay). 0: every candidate (calibration).
    prefilter: float = 0.6


def _xcorr(f: np.ndarray, g: np.ndarray, n: int) -> np.ndarray:
    """sum_i f[..., i] * g[..., i + k] for k from -(len f - 1) to len g - 1 (by FFT)."""
    r = np.fft.irfft(np.conj(np.fft.rfft(f, n)) * np.fft.rfft(g, n), n)
    return np.concatenate([r[..., n - (f.shape[-1] - 1) :], r[..., : g.shape[-1]]], axis=-1)


def _score(x: np.ndarray, y: np.ndarray, limits: ReplayLimits) -> float | None:
    """The mean correlation of the measures that move in either of two aligned stretches (samples x
    measures); None when fewer than `min_moving` move."""
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    vx, vy = (x * x).sum(axis=0), (y * y).sum(axis=0)
    moving = (vx > limits.moving**2 * len(x)) | (vy > limits.moving**2 * len(y))
    if moving.sum() < limits.min_moving:
        return None
    return float(((x * y).sum(axis=0)[moving] / np.sqrt(np.maximum(vx[moving] * vy[moving], 1e-12))).mean())


def similarity(a: Fingerprint, b: Fingerprint, limits: ReplayLimits = ReplayLimits()) -> tuple[float, float]:
    """(similarity, the overlap in seconds) at the best time offset of `a` against `b`; (0, 0) when no
    offset has enough overlap and movement.

    Every offset is scored at once over its whole overlap (cross-correlations by FFT); the best few are
    then scored part by part (the module's docstring).
    """
    x, y = a.samples.T, b.samples.T  # (measures, samples)
    mx, my = (~np.isnan(x).any(axis=0)).astype(np.float64), (~np.isnan(y).any(axis=0)).astype(np.float64)
    x, y = np.nan_to_num(x) * mx, np.nan_to_num(y) * my
    size = 1 << int(math.ceil(math.log2(x.shape[1] + y.shape[1])))
    count = np.rint(_xcorr(mx, my, size))
    sx, sy = _xcorr(x, my, size), _xcorr(mx, y, size)
    sxx, syy, sxy = _xcorr(x * x, my, size), _xcorr(mx, y * y, size), _xcorr(x, y, size)
    enough = count >= limits.min_overlap_s * RATE_HZ
    if not enough.any():
        return 0.0, 0.0
    n = np.maximum(count, 1.0)
    vx, vy = np.maximum(sxx - sx * sx / n, 0.0), np.maximum(syy - sy * sy / n, 0.0)
    moving = (vx > limits.moving**2 * n) | (vy > limits.moving**2 * n)
    corr = np.where(moving, (sxy - sx * sy / n) / np.sqrt(np.maximum(vx * vy, 1e-12)), 0.0)
    count_moving = moving.sum(axis=0)
    score = np.where(enough & (count_moving >= limits.min_moving), corr.sum(axis=0) / np.maximum(count_moving, 1), 0.0)
    best, overlap = 0.0, 0.0
    for index in np.argsort(score)[::-1][:CANDIDATES]:
        if score[index] <= 0 or score[index] < limits.prefilter:
            break
        lag = int(index) - (a.samples.shape[0] - 1)  # a's sample i meets b's sample i + lag
        start, end = max(0, -lag), min(a.samples.shape[0], b.samples.shape[0] - lag)
        both = np.flatnonzero(mx[start:end] * my[start + lag : end + lag]) + start
        parts = np.array_split(both, max(1, int(len(both) / (limits.part_s * RATE_HZ))))
        scored = [v for v in (_score(a.samples[part], b.samples[part + lag], limits) for part in parts) if v is not None]
        lowest = sorted(scored)[: max(limits.min_parts, len(scored) // 2)]
        value = sum(lowest) / len(lowest) if len(scored) >= limits.min_parts else 0.0
        if value > best:
            best, overlap = value, len(both) / RATE_HZ
    return best, overlap


@dataclass(frozen=True)
class EarlierCheck:
    session_id: str
    fingerprint: Fingerprint


def replayed_check_signal(fingerprint: Fingerprint, earlier: list[EarlierCheck], limits: ReplayLimits = ReplayLimits()) -> RiskSignal | None:
    """The check's fingerprint against the merchant's earlier checks: the closest one at or above the
    limit makes this check a replay of it (an attack)."""
    best: tuple[float, float, str] | None = None
    for check in earlier:
        score, overlap = similarity(fingerprint, check.fingerprint, limits)
        if score >= limits.similarity and (best is None or score > best[0]):
            best = (score, overlap, check.session_id)
    if best is None:
        return None
    detail = {"similarity": round(best[0], 3), "overlap_s": round(best[1], 1), "earlier_session": best[2], "compared": len(earlier), "limit": limits.similarity}
    return RiskSignal(SignalCode.REPLAYED_CHECK, Level.HIGH, detail, Action.FAIL)
