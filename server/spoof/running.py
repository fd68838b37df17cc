"""Passive anti-spoofing through a live check: frames are scored as they arrive, the verdict is kept current.

Pure bookkeeping, safe across threads: the analysis workers offer frames, a scoring job takes the newest
waiting one, and the flow reads the verdict whenever the check ends. Frames are chosen as the offline
evaluation chooses them (a `SpreadSample`: at most `max_frames` kept, the gap doubling when it thins), so
the shipped calibration describes what the live path decides on; each frame is scored as it is chosen,
so a check costs a few frames a second at first and ever fewer as it goes on. Before the challenges, the
light gate's first frames of the steady stream are scored as they come as well (pad.py `GateFrames`): for
their noise, not for the verdict. At most one frame waits: a newer one replaces it (no backlog), and the
one waiting is dropped when the check ends.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

from .pad import GateFrames, PadFramePolicy, PadResult, PadThresholds, PadVerdict, SpreadSample

T = TypeVar("T")

# An attack verdict on at least this many scored frames ends any attempt as `presentation_attack`, whatever
# its challenges did; on fewer it fails only a check that otherwise passed (as the verdict after it did).
CONFIDENT_FRAMES = 3


@dataclass(eq=False)
class _Slot:
    luma: float = 0.0  # the face's mean luma, before the exposure rule
    score: float | None = None  # None: not scored (dropped for a newer frame, or no face for the detector)
    noise: float | None = None  # the face's noise after the exposure rule, measured when scored
    detail: float | None = None  # the face's fine detail over its noise, measured when scored
    t: float = 0.0  # its stream time
    dropped: bool = False  # replaced, while waiting, by a newer frame: never scored


class RunningPad(Generic[T]):
    def __init__(self, policy: PadFramePolicy, thresholds: PadThresholds) -> None:
        self.thresholds = thresholds
        self._policy = policy
        self._sample: SpreadSample[_Slot] = SpreadSample(policy.max_frames, policy.min_gap_s)
        self._gate = GateFrames()  # the light gate's own frames (pad.py), none until `anchor` asks for them
        self._gate_slots: list[_Slot] = []
        self._waiting: tuple[_Slot, T] | None = None
        self._busy = False
        self._ms = 0.0
        self._offered = 0
        self._answered = 0  # frames whose scoring finished (a face found or not)
        self._steady_answered = 0  # of those, the frames from the anchor on
        self._closed = False
        self._check_from: float | None = None  # when the challenges started (liveness/light.py: lit for the gate, dim after)
        self._lock = threading.Lock()

    def due(self, t: float) -> bool:
        """Whether a frame at t would be chosen (cheap; ask before preparing the frame)."""
        with self._lock:
            return not self._closed and (self._sample.due(t) or self._gate_due(t))

    def gate_due(self, t: float) -> bool:
        """Whether a frame at t is one the light gate still needs at once (GateFrames: analyse it whatever the rate)."""
        with self._lock:
            return not self._closed and self._gate_due(t)

    def _gate_due(self, t: float) -> bool:
        return self._check_from is None and self._gate.due(t, self._sample, lambda slot: not slot.dropped)

    def offer(self, t: float, frame: T, luma: float = 0.0) -> None:
        """A frame worth scoring at t (its face luma); it replaces the one waiting, if any (that one is never scored)."""
        with self._lock:
            if self._closed:
                return
            slot = _Slot(luma, t=t)
            if self._sample.due(t):
                self._sample.add(t, slot)
                self._offered += 1
            elif self._gate_due(t):
                self._gate.times.append(t)
                self._gate_slots.append(slot)
            else:
                return
            if self._waiting is not None:
                self._drop(self._waiting[0])
            self._waiting = (slot, frame)

    def _drop(self, slot: _Slot) -> None:
        slot.dropped = True
        if slot in self._gate_slots:
            self._gate_slots.remove(slot)
            self._gate.times.remove(slot.t)

    def take(self) -> tuple[_Slot, T] | None:
        """For a scoring job: the newest waiting frame, or None when there is none or a job is running."""
        with self._lock:
            if self._busy or self._waiting is None or self._closed:
                return None
            taken, self._waiting, self._busy = self._waiting, None, True
            return taken

    def scored(self, slot: _Slot, score: float | None, ms: float, noise: float | None = None, detail: float | None = None) -> None:
        with self._lock:
            slot.score, slot.noise, slot.detail = score, noise, detail
            self._ms += ms
            self._answered += 1
            self._busy = False
            start = self._sample.start
            self._steady_answered += start is not None and slot.t - start >= self._sample.anchor_s

    def noises(self) -> tuple[float | None, ...]:
        """The face noise of the frames scored so far, oldest first (the light gate, liveness/light.py)."""
        return self.measured()[0]

    def measured(self) -> tuple[tuple[float | None, ...], tuple[float, ...]]:
        """`noises()` and the stream time of each of those frames (the gate's own frames among them)."""
        with self._lock:
            slots = [slot for _, slot in self._sample.items] + self._gate_slots
            timed = sorted((slot.t, slot.noise) for slot in slots if slot.score is not None)
            return tuple(n for _, n in timed), tuple(t for t, _ in timed)

    def steady_answered(self) -> int:
        """Frames from the anchor on whose scoring finished: each may open the light gate."""
        with self._lock:
            return self._steady_answered

    def first_scoring(self) -> bool:
        """Whether no frame has been scored yet while one is being scored or waits for a scoring job (a late
        first score, not a face the scorer could not measure: the light gate waits longer for it)."""
        with self._lock:
            return self._answered == 0 and (self._busy or self._waiting is not None) and not self._closed

    def anchor(self, start: float, anchor_s: float, gate_frames: int = 0) -> None:
        """The stream began at `start` (its first analysed frame): the frame `anchor_s` later is chosen at once
        (SpreadSample; the light gate's `settle_s`), and with `gate_frames` (`LightGate.frames`) the frames
        from then on until the gate has that many, besides the sample (GateFrames)."""
        with self._lock:
            self._sample.start, self._sample.anchor_s = start, anchor_s
            self._gate = GateFrames(gate_frames)

    def restart(self) -> None:
        """Forget the frames chosen so far (the face was too dark to judge until now); the cost stays counted."""
        with self._lock:
            old = self._sample
            self._sample = SpreadSample(self._policy.max_frames, self._policy.min_gap_s, start=old.start, anchor_s=old.anchor_s)
            self._gate, self._gate_slots = GateFrames(), []  # lit at last: the gate needs no more frames of its own
            self._waiting = None

    def check_started(self, t: float) -> None:
        """The challenges started at t: the frames scored from then on are the check's own (their noise is judged apart)."""
        with self._lock:
            if self._check_from is None:
                self._check_from = t

    @property
    def waiting(self) -> bool:
        with self._lock:
            return self._waiting is not None and not self._closed

    def close(self) -> None:
        """The check ended: nothing more is offered or taken."""
        with self._lock:
            self._closed, self._waiting = True, None

    def result(self, deformation: float | None = None) -> PadResult:
        """The verdict now: the median of the scored frames the sample still keeps, decided with the
        check's `deformation` (flatness.py) and those frames' face luma, noise and detail, and the noise of
        those scored since the challenges started."""
        with self._lock:
            timed = [(t, slot) for t, slot in self._sample.items if slot.score is not None]
            slots = [slot for _, slot in timed]
            since = self._check_from
            checked = [slot.noise for t, slot in timed if since is not None and t >= since]
            return PadResult.of([s.score for s in slots], self.thresholds, self._ms, self._offered, deformation, [s.luma for s in slots],
                                [s.noise for s in slots], [s.detail for s in slots], checked)


def confident_attack(result: PadResult) -> bool:
    """An attack verdict strong enough to end any attempt as `presentation_attack`."""
    return result.verdict == PadVerdict.ATTACK and result.frames_scored >= CONFIDENT_FRAMES
