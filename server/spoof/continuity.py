"""Cuts in a stream: footage spliced together, one piece per prompt (issue 24 item 3).

A live camera is continuous: from one frame to the next the picture changes a little, or over several
frames when the person moves or the hand shakes. A stream assembled from pieces of real footage jumps at
every cut, in one frame (the background, the light, the face's place and size all at once), then goes on
smoothly. So each consecutive pair of frames gets a step: the mean grey change of a small thumbnail of the
whole frame, after the best small shift (a shaking camera moves the picture; a cut changes it), and a cut
is a step far above the stream's own usual step AND above the steps on one side of it (a jump out of a
continuous stretch; a movement's steps grow and shrink on both sides). The tracker is fed EVERY frame the
stream delivers, not only the analysed ones (the analysis skips frames as its step allows and as the
machine's load forces, and a cut between two analysed frames far apart hides among the larger steps of a
slow sampling): a thumbnail of the frame's luma plane, no colour conversion, about 0.2 ms a frame with
the step. A step across a gap (frames the encoder or the network dropped) is judged per interval it spans;
one across a long stall is not judged. A cut cross-faded over a few frames jumps in several small steps;
a run of 2-7 steps whose inner frames are blends of its ends (at a finer 64x48, where a movement is not
one) is judged as one jump; a browser's VP8 adds its noise to the blends, so a run a little further from
them counts too when its blend climbs evenly and starts and ends abruptly (judged 2 frames late, when
the steps after it have come). A cut between two moments of one shot may change the picture little,
less than a movement does, but its sharpness (focus, motion blur, light: the contrast of its edges)
changes in that one frame, where a camera's changes over several: each step also keeps how much the
sharpness changed (`sharpness`, of the finer picture, under 10 us a frame), and a step that stands out
both ways is a cut (`CutLimits.jolt`). Pure and cheap; calibrated with `python -m realname_tools.splices
calibrate` (docs/anti-spoofing.md).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import median

import numpy as np

THUMB_SIZE = (32, 24)  # width, height: whatever the frame's shape, steps are compared within one stream
FINE_SIZE = (64, 48)  # where a cross-fade is told from a movement (see `blend_residual`)
FADE_STEPS = (2, 7)  # the shortest and longest run of steps judged as one cross-faded cut (a fade of 1-6 frames)
FADE_MIN = 0.4  # grey levels: CutLimits.prompted_floor, the smallest cut judged
FADE_RESIDUAL = 0.10  # the largest blend_residual of a fade: the genuine clips' lowest / 1.3, leaving one person out (the docs)
FADE_ORDER = 0.05  # how far a fade's fitted weights may stray (codec noise) and still go from one end to the other
# A fade through a browser's VP8 (docs/anti-spoofing.md): a run whose blend_residual is over FADE_RESIDUAL but
# within FADE_EVEN_RESIDUAL counts when its weights climb evenly (no step of the blend off its even share,
# 1/k of the way, by more than FADE_EVENNESS of that share) and it starts and ends abruptly (the
# FADE_AROUND steps on each side of it each under FADE_ABRUPT times its mean step): a movement ramps up
# and down, a fade goes from one piece to the other at once.
FADE_EVEN_RESIDUAL = 0.118  # the genuine streams' lowest (VP8 at 600 kbps and Chromium) / 1.3, leaving one person out
FADE_EVENNESS = 0.7
FADE_AROUND = 2
FADE_ABRUPT = 0.8
MIN_JOLT = 1e-3  # the least sharpness change a jolt is compared with (a synthetic stream's is 0)
MAX_SHIFT = 2  # thumbnail pixels (~6 % of the frame) a shaking camera may move the picture between frames
# 8-bit planar or semi-planar formats whose first plane is the luma, one byte a pixel: video range (16-235)
# but for the JPEG-range "yuvj" formats and grey.
LUMA_FIRST = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"})
FULL_RANGE = frozenset({"yuvj420p", "yuvj422p", "yuvj444p", "gray"})


def thumbnail(grey: np.ndarray) -> np.ndarray:
    """A grey (or luma) picture as a small float image."""
    return thumbnails(grey)[0]


def thumbnails(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A grey (or luma) picture as a small float image, and as a finer one (FINE_SIZE)."""
    import cv2

    # Nearest to 160 px first: a quarter of the cost of one area resize of the whole frame, the same steps.
    coarse = cv2.resize(grey, (THUMB_SIZE[0] * 5, THUMB_SIZE[1] * 5), interpolation=cv2.INTER_NEAREST)
    small = cv2.resize(coarse, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
    return small, cv2.resize(coarse, FINE_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)


def luma_thumbnail(frame) -> np.ndarray:
    """The thumbnail of an av.VideoFrame (see `luma_thumbnails`)."""
    return luma_thumbnails(frame)[0]


def luma_thumbnails(frame) -> tuple[np.ndarray, np.ndarray]:
    """The thumbnail and the finer one of an av.VideoFrame, from its luma plane when it has one (a decoded
    WebRTC or clip frame is yuv420p: no colour conversion), else from its grey conversion."""
    name = frame.format.name
    if name not in LUMA_FIRST:
        return thumbnails(frame.to_ndarray(format="gray"))
    plane = frame.planes[0]
    small, fine = thumbnails(np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width])
    if name in FULL_RANGE:
        return small, fine
    # Video range stretched to 0-255: the grey levels the limits are calibrated in (an RGB picture's grey).
    for picture in (small, fine):  # in place: both are this call's own
        picture -= 16.0
        picture *= 255.0 / 219.0
    return small, fine


def blend_residual(pictures: np.ndarray) -> float:
    """How far the inner pictures of a run (first, inner..., last; flattened, one a row) are from a
    cross-fade of its two ends: each inner one fitted as first + weight x (last - first) (least squares),
    the largest root-mean-square residual over that of the ends' difference; infinite unless the weights
    lie between the ends and in order. A fade's inner frames are such blends (its residual is the codec's
    noise); a movement's are not: an edge that moves is not half of it in two places (a small movement of
    a blurred picture is nearly a blend, hence the finer picture); a still scene's ends barely differ, so
    its noise is large against their difference."""
    first, last = pictures[0], pictures[-1]
    difference = last - first
    energy = float(difference @ difference)
    if energy <= 0.0:
        return float("inf")
    inner = pictures[1:-1] - first
    weights = inner @ difference / energy
    if weights.min() < FADE_ORDER or weights.max() > 1 - FADE_ORDER or np.any(np.diff(weights) < -FADE_ORDER):
        return float("inf")
    inner -= np.outer(weights, difference)
    return float(np.sqrt(np.einsum("ij,ij->i", inner, inner).max() / energy))


def sharpness(fine: np.ndarray) -> float:
    """The natural log of the variance of the finer picture's Laplacian (its edges' contrast): a camera's
    focus, motion blur and exposure change it gradually; a cut to another moment, at once."""
    import cv2

    _, deviation = cv2.meanStdDev(cv2.Laplacian(fine, cv2.CV_32F))  # half the time of ndarray.var()
    return float(np.log(deviation[0, 0] ** 2 + 1.0))


def shifted_difference(before: np.ndarray, after: np.ndarray, reach: int = MAX_SHIFT) -> float:
    """The smallest mean absolute difference of the two thumbnails over shifts of up to `reach` pixels
    (over the part they share at each shift; all shifts at once, about 0.05 ms).

    Every frame the stream delivers comes here, on the receiving loop. The sums are those of a NaN-padded
    `np.nanmean` (the same values, in the same order: bit for bit the same step) without its NaN passes,
    which took half the time."""
    h, w = before.shape
    n = 2 * reach + 1
    inside, counts = _overlap(h, w, reach)
    padded = np.zeros((h + 2 * reach, w + 2 * reach), np.float32)
    padded[reach : reach + h, reach : reach + w] = after
    rows, cols = padded.strides
    # The windows as a view made directly (as_strided's checks cost more than the view), never written.
    windows = np.ndarray((n, n, h, w), np.float32, padded, 0, (rows, cols, rows, cols))
    changes = np.subtract(windows, before)  # (n, n, h, w): each shift of `after` against `before`
    np.abs(changes, out=changes)
    changes *= inside  # 0 where the shifted picture is outside the thumbnail, as nanmean's NaN becomes 0
    sums = np.add.reduce(changes, axis=(2, 3), dtype=np.float32)
    np.true_divide(sums, counts, out=sums, casting="unsafe")
    return float(sums.min())


@lru_cache(maxsize=4)
def _overlap(h: int, w: int, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """For each shift: 1 where the shifted thumbnail covers a pixel, else 0; and how many it covers."""
    padded = np.zeros((h + 2 * reach, w + 2 * reach), np.float32)
    padded[reach : reach + h, reach : reach + w] = 1.0
    inside = np.lib.stride_tricks.sliding_window_view(padded, (h, w)).copy()
    inside.flags.writeable = False
    return inside, inside.sum(axis=(2, 3), dtype=np.intp)


@dataclass(frozen=True)
class Step:
    t: float  # the later frame's time
    dt: float  # seconds since the earlier one
    change: float  # grey levels (shifted_difference)
    fade: float = 0.0  # grey levels from the first frame of a cross-fade that ends here to this one (0: none)
    fade_steps: int = 0  # the steps that fade took
    sharpness: float = 0.0  # how much the picture's sharpness changed: |log| of the ratio of their `sharpness`


@dataclass
class ContinuityTracker:
    """Fed every frame of a stream; keeps the last 7 frames' thumbnails and finer pictures (for fades) and
    one small step a frame.

    `t` is the stream's clock (a live check's arrival clock, a clip's own); `capture_t`, when the frame
    carries one (its RTP or file timestamp), is the picture's own time: the step's interval is the shorter
    of the two (a burst of late frames is not a gap; a gap must be in both clocks to excuse a jump)."""

    steps: list[Step] = field(default_factory=list)
    fade_residual: float = FADE_RESIDUAL  # judged here, where the pictures are (cuts() sees Step.fade)
    even_residual: float = FADE_EVEN_RESIDUAL  # an even, abrupt run's (under fade_residual: none)
    _last: tuple[float, float | None, np.ndarray] | None = None
    _sharp: float | None = None  # the last frame's `sharpness`
    _even: list[tuple[int, float, int, float]] = field(default_factory=list)  # (step index, jump, steps, mean step) awaiting the steps after
    _recent: deque = field(default_factory=lambda: deque(maxlen=FADE_STEPS[1]))  # (thumb, fine) of the frames before
    _gram: list[list[float]] = field(default_factory=list)  # their fine pictures' dot products

    def add_frame(self, t: float, frame) -> None:
        """An av.VideoFrame (every frame, as it arrives)."""
        thumb, fine = luma_thumbnails(frame)
        self.add(t, thumb, float(frame.time) if frame.time is not None else None, fine)

    def add(self, t: float, thumb: np.ndarray, capture_t: float | None = None, fine: np.ndarray | None = None) -> None:
        """`fine`: the same picture at FINE_SIZE (`thumbnails`); without it no cross-fade is looked for."""
        vector = None if fine is None else fine.ravel().astype(np.float64) - 128.0
        sharp = None if fine is None else sharpness(fine)
        if vector is None or (self._recent and self._recent[-1][1].shape != vector.shape):
            self._recent.clear()
            self._gram = []
        gram = None
        if vector is not None:  # the dot products of the recent frames and this one, the last row and column this one's
            dots = [float(v @ vector) for _, v in self._recent]
            gram = [row + [d] for row, d in zip(self._gram, dots, strict=True)] + [dots + [float(vector @ vector)]]
        if self._last is not None:
            last_t, last_capture, last_thumb = self._last
            dt = t - last_t
            if capture_t is not None and last_capture is not None and capture_t > last_capture:
                dt = min(dt, capture_t - last_capture) if dt > 0 else capture_t - last_capture
            if dt > 0 and thumb.shape == last_thumb.shape:
                change = shifted_difference(last_thumb, thumb)
                fade, fade_steps = self._fade(thumb, gram, change) if gram is not None else (0.0, 0)
                jolt = abs(sharp - self._sharp) if sharp is not None and self._sharp is not None else 0.0
                self.steps.append(Step(t, dt, change, fade, fade_steps, jolt))
                if self._even:
                    self._settle()
            else:
                self._recent.clear()
                self._even.clear()
                gram = None if gram is None else [gram[-1][-1:]]
        self._last = (t, capture_t, thumb)
        self._sharp = sharp
        if vector is not None:
            self._recent.append((thumb, vector))
            self._gram = [row[-FADE_STEPS[1] :] for row in gram[-FADE_STEPS[1] :]]

    def _fade(self, thumb: np.ndarray, gram: list[list[float]], change: float) -> tuple[float, int]:
        """The largest change from the first frame of a run of 2-7 steps ending with this frame whose inner
        frames are a cross-fade of its ends (`blend_residual` within `fade_residual`, from the fine
        pictures' dot products: a few microseconds a frame), and its steps. Only runs whose ends differ
        (unshifted, on the thumbnail) by at least FADE_MIN and half as much again as their largest step
        count: a fade's ends differ by the sum of its steps, a movement's often by less."""
        n = len(gram) - 1  # this frame's index; the frames before it are the recent ones
        found = (0.0, 0)
        largest = total = change
        for k in range(FADE_STEPS[0], min(n, len(self.steps) + 1) + 1):
            largest = max(largest, self.steps[-k + 1].change)
            total += self.steps[-k + 1].change
            start = self._recent[n - k][0]
            residual, evenness = gram_blend_fit(gram, n - k, n)
            even = residual <= self.even_residual and evenness <= FADE_EVENNESS
            if residual > self.fade_residual and not even:
                continue
            if float(np.abs(thumb - start).mean()) < max(FADE_MIN, 1.5 * largest):
                continue
            jump = shifted_difference(start, thumb)
            if residual > self.fade_residual:
                # Judged when the steps after it have come (`_settle`), if abrupt on this side.
                mean = total / k
                if all(s.change <= FADE_ABRUPT * mean for s in self.steps[max(0, len(self.steps) - k - FADE_AROUND + 1) : len(self.steps) - k + 1]):
                    self._even.append((len(self.steps), jump, k, mean))
            elif jump > found[0]:
                found = (jump, k)
        return found

    def _settle(self) -> None:
        """The even runs (`_fade`) whose FADE_AROUND steps after them have come: a fade if each is under
        FADE_ABRUPT times the run's mean step, kept on the run's last step when larger than its fade."""
        last = len(self.steps) - 1
        waiting = []
        for index, jump, k, mean in self._even:
            if last - index < FADE_AROUND:
                waiting.append((index, jump, k, mean))
            elif all(s.change <= FADE_ABRUPT * mean for s in self.steps[index + 1 : index + 1 + FADE_AROUND]) and jump > self.steps[index].fade:
                self.steps[index] = dataclasses.replace(self.steps[index], fade=jump, fade_steps=k)
        self._even = waiting


def gram_blend_fit(gram: list[list[float]], first: int, last: int) -> tuple[float, float]:
    """`blend_residual` of the pictures first..last, from their dot products (plain floats: for so few,
    faster than arrays), and how unevenly the fitted weights climb: the largest share of the way from 0
    to the first weight, between weights and from the last to 1, times the steps, off 1 (0: in equal
    steps, as a fade blends; a movement that goes fast then slow is far from it)."""
    inf = float("inf")
    first_row, last_row = gram[first], gram[last]
    first_first, first_last = first_row[first], first_row[last]
    energy = last_row[last] + first_first - 2.0 * first_last
    if energy <= 0.0:
        return inf, inf
    worst = 0.0
    previous = 0.0
    uneven = 0.0
    k = last - first
    low, high = FADE_ORDER, 1.0 - FADE_ORDER
    # Every frame received runs this for each run of 2-7 steps: rows held and ifs for max(), the same arithmetic.
    for j in range(first + 1, last):
        row = gram[j]
        along = row[last] - row[first] - first_last + first_first  # <p - first, last - first>
        weight = along / energy
        if weight < low or weight > high or weight < previous - low:
            return inf, inf
        off = abs((weight - previous) * k - 1.0)
        if off > uneven:
            uneven = off
        previous = weight
        residual = row[j] + first_first - 2.0 * row[first] - weight * along  # |p - first|^2 - weight <p - first, last - first>
        if residual > worst:
            worst = residual
    off = abs((1.0 - previous) * k - 1.0)
    return (worst / energy) ** 0.5, off if off > uneven else uneven


@dataclass(frozen=True)
class CutLimits:
    """A step is a cut when its change per interval is over `floor` grey levels, `times` the stream's
    median step and `isolation` times the median of the steps on its calmer side (`around` steps before
    it, or after it; repeated frames left out: a video that repeats frames moves in bigger steps between
    the repeats). Repeated frames are joined to the next distinct picture (`distinct`: the stream's median
    and intervals are those of its distinct pictures, a camera padding 15 frames a second to 30 is judged
    at 15). A step after `n` repeated frames, or across a gap of `n` + 1 usual intervals (dropped
    frames), counts as `n` + 1 intervals of movement; one across more than `max_gap` usual intervals (a
    stall) is not judged.

    In a prompt's reaction window (from the prompt to the movement's first sign), where footage assembled
    one piece per prompt must cut to the piece that answers it, a step under the `floor` is a cut too when
    it is over `prompted_floor`, `prompted_times` the stream's median step and `isolation` times its
    calmer side: a cut between two pieces of one still shot changes the picture by less than the `floor`
    a quiet genuine stream reaches elsewhere. Anywhere, such a step is a cut when it stands out further
    from the stream: over `quiet_times` its median step (and `isolation` times its calmer side): a still
    person in a still shot, cut between two moments, changes the picture little, the stream around the cut
    even less. A step under the floor that passes `times` and `isolation` but not its times limit is a cut
    too when it stands far out of both sides: the product of its ratios to the stream's median step, to
    its calmer side and to its other side over `evidence` (a movement, a blink or a codec's step is mostly
    calm on one side at most; a cut out of a still shot on both). Any step over `prompted_floor` is a cut
    too when it also jolts the picture's sharpness: the geometric mean of its ratio to the larger of the
    stream's median step and its calmer side, and of its sharpness change's to the larger of the stream's
    median one and its calmer side's, over `jolt` (`_jolts`)."""

    floor: float = 2.0
    times: float = 5.0
    isolation: float = 6.0  # 1.3 x the highest of the other genuine clips, left out one at a time (the docs)
    prompted_floor: float = 0.4
    prompted_times: float = 9.2  # 1.3 x the genuine streams' highest in a reaction window (the docs)
    quiet_times: float = 10.8  # 1.3 x the genuine streams' highest under the floor, offline and through Chromium (the docs)
    evidence: float = 258.0  # times x isolation x the other side's: 1.3 x the genuine streams' highest step (the docs)
    jolt: float = 9.5  # a step that changes the sharpness at once (`_jolts`): 1.3 x the genuine streams' highest (the docs)
    around: int = 3
    repeat: float = 0.25  # of the median step: a repeated frame, not a neighbour
    repeated: float = 0.4  # of the last distinct step, and under `repeat` of the upper quartile: a repeated frame (`distinct`)
    dip: float = 0.3  # of a step beside it: a step left out of a calmer side, a repeat's codec noise (`_moving`)
    max_gap: float = 8.0
    min_steps: int = 10
    burst: float = 0.25  # of the usual interval: frames closer are a burst (see _at)


def _at(step: Step, interval: float, burst: float = CutLimits.burst) -> float:
    """A step's change as over `interval`: one of a stretch sent at n times the rate moves 1/n as much.

    Frames much closer than the usual interval (1-6 ms apart on a busy machine or network) are not a
    camera sending faster: they were captured an interval apart and delivered together. Scaled as they
    come, a step of theirs would count up to 40 times its change and drown a real cut beside it; no rate
    the page asks for, nor a camera's own (15-60 frames a second), is more than 4 times the usual one."""
    return step.change * max(1, round(interval / max(step.dt, burst * interval)))


def cuts(steps: list[Step], limits: CutLimits = CutLimits(), windows: Sequence[tuple[float, float]] = ()) -> list[float]:
    """Times of the steps that are cuts; `windows`: the prompts' reaction windows (start, end), on the
    steps' clock."""
    if len(steps) < limits.min_steps:
        return []
    # Repeated frames joined to the next distinct one (`distinct`); the upper quartile, not the median:
    # a camera padding 10 frames a second to 25 repeats 3 frames in 5.
    changes = sorted(s.change for s in steps)
    steps = distinct(steps, limits.repeat * changes[(3 * len(changes)) // 4], limits.repeated)
    usual = median(s.change for s in steps)
    usual_jolt = median(s.sharpness for s in steps)
    interval = median(s.dt for s in steps)
    reach = 3 * limits.around
    found: list[float] = []
    last_cut = -limits.around - 1
    for i, step in enumerate(steps):
        # The usual interval around the step, not only the stream's: the page sends some steps at fewer
        # frames a second (server/liveness/rates.py). A cut across an interval the page was asked for is
        # one interval's jump; the steps it is compared with are taken at that interval (a step of a
        # stretch sent at twice the rate moves half as much), and so is the stream's usual step.
        local = median(s.dt for s in steps[max(0, i - reach) : i + reach + 1])
        spans = max(1, round(step.dt / local))  # usual intervals between the two frames
        if spans > limits.max_gap or i - last_cut <= limits.around:  # the steps just after a cut: its new piece
            continue
        prompted = any(start <= step.t <= end for start, end in windows)
        jumps = [(step.change / spans, i)]
        # A cross-fade (ContinuityTracker._fade): its steps as one jump, judged against the steps before its
        # first one; not across a stall, nor counted again when one of its steps was a cut.
        first = i - step.fade_steps + 1
        if step.fade > 0 and first > last_cut and all(s.dt <= limits.max_gap * local for s in steps[first:i]):
            jumps.append((step.fade, first))
        if any(_stands_out(steps, start, i, change, limits, usual, local, interval, prompted, usual_jolt) for change, start in jumps):
            found.append(step.t)
            last_cut = i
    return found


def distinct(steps: list[Step], least: float, repeated: float = CutLimits.repeated) -> list[Step]:
    """The steps between distinct pictures: a repeated frame's step (under `least`, and `repeated` times
    the last distinct step) joined to the next one, whose interval it lengthens (its change is the
    movement of that many more intervals). A camera that stalls repeats a frame, then jumps; one that
    pads a lower rate (15 frames a second sent as 20 or 30, 10 as 25) repeats frames regularly, which
    would pull the stream's median step down to the codec's noise: its stream is judged at that lower
    rate. Judged against the steps before, not the stream's median (which such repeats pull down) nor
    the step after (a cut)."""
    out: list[Step] = []
    held = 0.0
    for step in steps:
        if out and step.change < least and step.change < repeated * out[-1].change:
            held += step.dt
            continue
        out.append(dataclasses.replace(step, dt=step.dt + held) if held else step)
        held = 0.0
    return out


def _stands_out(steps: list[Step], first: int, last: int, change: float, limits: CutLimits, usual: float, local: float,
                interval: float, prompted: bool, usual_jolt: float = 0.0) -> bool:
    """Whether a jump of `change` grey levels over steps[first:last + 1] is a cut (`cuts`)."""
    if change >= limits.floor:
        times = limits.times
    elif change >= limits.prompted_floor:
        times = min(limits.prompted_times, limits.quiet_times) if prompted else limits.quiet_times
    else:
        return False
    base = usual * max(1, round(local / interval))
    usual_enough = change >= min(times, limits.times) * base
    # The jolt's ratios are at most change / base and sharpness / usual_jolt: most steps end here.
    jolt = steps[last].sharpness if first == last else 0.0
    if not usual_enough and change * jolt < limits.jolt**2 * base * max(usual_jolt, MIN_JOLT):
        return False
    reach = 3 * limits.around
    moving_before = list(reversed(_moving(steps[max(0, first - reach) : first], limits.repeat * usual, limits.dip)))[: limits.around]
    moving_after = _moving(steps[last + 1 : last + 1 + reach], limits.repeat * usual, limits.dip)[: limits.around]
    before = [_at(s, local, limits.burst) for s in moving_before]
    after = [_at(s, local, limits.burst) for s in moving_after]
    # Either side may be moving: an attacker's piece begins with the movement its prompt asks for, or
    # ends with the return to neutral. A movement of the person has moving steps on both sides.
    local_step, other_step = sorted((median(before) if before else usual, median(after) if after else usual))
    if jolt > 0.0 and _jolts(jolt, change / max(local_step, base), moving_before, moving_after, usual_jolt, limits):
        return True
    if not usual_enough:
        return False
    if change < limits.isolation * local_step:
        return False
    return change >= times * base or (change >= limits.times * base and change**3 >= limits.evidence * base * local_step * other_step)


def _jolts(jolt: float, standing: float, before: list[Step], after: list[Step], usual_jolt: float, limits: CutLimits) -> bool:
    """Whether a step that stands `standing` times out of the stream's usual step and its calmer side
    also changed the picture's sharpness at once: the geometric mean of the two ratios (the sharpness
    change against the stream's median one and the calmer side's, of the same moving steps) over
    `limits.jolt`. A cut between two moments of a shot changes the focus, the motion blur or the light
    in one frame, a camera over several (docs/anti-spoofing.md)."""
    sides = [median(s.sharpness for s in side) for side in (before, after) if side]
    calm = max(min(sides, default=usual_jolt), usual_jolt, MIN_JOLT)
    return standing * jolt / calm >= limits.jolt**2


def _moving(side: list[Step], least: float, dip: float = CutLimits.dip) -> list[Step]:
    """The steps of one side of a jump that moved: over `least`, and not under `dip` times a step beside
    them on that side. Through the codec a repeated frame's step is its noise, which in a still scene is
    not always under the `distinct` rule's limits but is well under the movements on either side; left in,
    a camera padding 15 frames a second to 30 makes every side as calm as its repeats."""
    changes = [s.change for s in side]
    return [s for k, s in enumerate(side) if s.change >= least and s.change >= dip * max(changes[max(0, k - 1) : k + 2])]
