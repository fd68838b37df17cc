"""Light before the check: a face too dim and noisy for anti-spoofing to judge is asked for more light. Pure.

In a dim room the camera's sensor noise, brightened by the exposure rule (models/pad.py `Exposure.noise`),
hides the texture the PAD model reads: it drags genuine faces' scores down and pushes some attacks' up, so
such a face could only go to review. Commercial checks ask the customer to move to a brighter place
instead, before the check. So does this one: while the challenges have not started, the face noise of the
frames PAD scored decides whether they may start. The limit is the PAD rule's own `noisy_above` (the
calibration file), so "asked for more light" and "noisy face" are the same thing; once the check runs, a
face that turns noisy is at best review (light up for the gate, dim after: spoof/pad.py `check_noise`).
The same function decides the live start and `eval-pad`'s replay of a clip.

Lit is judged on the steady stream only. A browser's encoder starts smooth: in Chromium the first frames
of a dim room measure a third to a half of its later noise (0.8-1.0 against 1.9-2.2, settled after 0.6-0.8 s
at the start bitrate the server asks for, rtc/bandwidth.py; docs/anti-spoofing.md), so a gate judging them
opened for a room it holds later. Frames measured before `settle_s` may say dark (smoother than the steady
stream, they can only understate the noise), never lit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from statistics import median


class Light(StrEnum):
    UNKNOWN = "unknown"  # no scored frame yet: the challenges wait (at most `unmeasured_grace_s`, or `first_score_grace_s`)
    DARK = "dark"  # the customer is asked for more light; the challenges wait
    LIT = "lit"


@dataclass(frozen=True)
class LightGate:
    noisy_above: float  # face noise after the exposure rule (grey levels, PadThresholds.noisy_above); 0: the gate is off
    frames: int = 3  # the median of the last this many measured frames decides
    # With nothing measured this long after the start (no scoring thread free, or SCRFD finds no face), the
    # gate opens: PAD's own rules then judge the face as they did without a gate.
    unmeasured_grace_s: float = 3.0
    # While the first frame offered is still being scored (or waits for its thread), longer: on a saturated
    # machine the scoring threads yield to the analysis (flow/pad_scoring.py), and a first score that is
    # merely late must not let a dim room through unmeasured. Bounded, well within the start timeout.
    first_score_grace_s: float = 10.0
    # Seconds of the stream before its frames may say lit: the sender's encoder starting smooth (module doc).
    settle_s: float = 1.0

    def judge(self, noises: Sequence[float | None], waited_s: float = 0.0, first_scoring: bool = False,
              measured_s: Sequence[float] | None = None) -> Light:
        """The light now, from the face noise of the frames scored so far (oldest first; `measured_s`: each
        one's seconds since the start, None for frames all of the steady stream), the seconds waited since
        the start, and whether the first frame offered for scoring is still on its way (none scored yet).
        Dark as soon as the frames measured say so; lit only once `frames` of them measured from `settle_s`
        on do (a single frame may catch a moment the room's light has not settled), or, when too few could
        be measured, after `unmeasured_grace_s` (`first_score_grace_s` while the first score is on its way)."""
        if self.noisy_above <= 0:
            return Light.LIT
        at = measured_s if measured_s is not None else [self.settle_s] * len(noises)
        timed = [(n, t) for n, t in zip(noises, at, strict=True) if n is not None]
        known = [n for n, _ in timed][-self.frames :]
        if known and median(known) > self.noisy_above:
            return Light.DARK
        steady = [n for n, t in timed if t >= self.settle_s][-self.frames :]
        if len(steady) >= self.frames and median(steady) <= self.noisy_above:
            return Light.LIT
        grace = self.first_score_grace_s if first_scoring else self.unmeasured_grace_s
        return Light.LIT if waited_s >= grace else Light.UNKNOWN

    def opens_at(self, noises: Sequence[float | None], waited_s: Sequence[float] | None = None) -> int | None:
        """Offline, a clip's frames in the order a check scores them (with the seconds since the clip began at
        each): the index of the frame at which the gate opens (judged after each), None if it never does."""
        for index in range(len(noises)):
            at = waited_s[: index + 1] if waited_s is not None else None
            if self.judge(noises[: index + 1], at[-1] if at else 0.0, measured_s=at) == Light.LIT:
                return index
        return None
