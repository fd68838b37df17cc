"""How long a condition of the face has lasted, in media time, whatever rate its frames are analysed at. Pure.

An analysed frame is a sample: a condition seen from one frame to another most likely began halfway
between the last frame without it and the first with it, so that half-gap (its `lead`) counts too.
Without it a hold would need up to one more frame interval of movement at a lower rate (a wrong turn
held 0.44 s failed at 20 analysed frames a second and passed at 15).
"""

from __future__ import annotations

from .signals import FrameSignals

# Frame times come from a 90 kHz (RTP) or a file's clock through float sums: a hold of exactly its seconds
# must not read a hair short of them.
TIME_EPSILON_S = 1e-6


def held(since: float, lead: float, t: float, seconds: float) -> bool:
    """Whether a condition seen from `since` to `t`, begun `lead` seconds before `since`, has lasted `seconds`."""
    return t - since + lead >= seconds - TIME_EPSILON_S


def lead_of(gap: float, max_gap_s: float) -> float:
    """Half the gap to the frame analysed before (at most half of `max_gap_s`: a stall is not a hold)."""
    return min(gap, max_gap_s) / 2


class Hold:
    """True once a condition has held for a minimum time over at least a number of analysed frames."""

    def __init__(self, seconds: float, frames: int, max_gap_s: float) -> None:
        self.seconds, self.frames, self.max_gap_s = seconds, frames, max_gap_s
        self.since: float | None = None
        self.lead = 0.0
        self.count = 0

    def update(self, ok: bool, t: float, gap: float) -> bool:
        """`gap`: seconds since the frame analysed before this one (0: none)."""
        if not ok:
            self.since, self.count = None, 0
            return False
        if self.since is None:
            self.since, self.lead = t, lead_of(gap, self.max_gap_s)
        self.count += 1
        return self.count >= self.frames and held(self.since, self.lead, t, self.seconds)

    def reset(self) -> None:
        self.since, self.count = None, 0


class SteadyStretch:
    """The latest stretch of frames where a condition held (a neutral face), all within `steady_deg` of its
    first frame in yaw and pitch; done once it has lasted `seconds` over at least `frames` frames. A face
    still settling drops the stretch's oldest frames, not all of them: where the stretch begins then does
    not depend on which frames of the settling movement were analysed."""

    def __init__(self, steady_deg: float, seconds: float, frames: int, max_gap_s: float) -> None:
        self.steady_deg, self.seconds, self.min_frames, self.max_gap_s = steady_deg, seconds, frames, max_gap_s
        self.frames: list[FrameSignals] = []
        self._leads: list[float] = []

    def update(self, s: FrameSignals, ok: bool, gap: float) -> bool:
        if not ok:
            self.clear()
            return False
        self.frames.append(s)
        self._leads.append(lead_of(gap, self.max_gap_s))
        while any(self._unsteady(self.frames[0], f) for f in self.frames[1:]):
            del self.frames[0], self._leads[0]
        return len(self.frames) >= self.min_frames and held(self.frames[0].t, self._leads[0], s.t, self.seconds)

    def held_from(self) -> float | None:
        """The time from which the stretch, steady on, has lasted its seconds (None: no stretch under way)."""
        return self.frames[0].t - self._leads[0] + self.seconds - TIME_EPSILON_S if self.frames else None

    def _unsteady(self, first: FrameSignals, f: FrameSignals) -> bool:
        return abs(f.yaw - first.yaw) > self.steady_deg or abs(f.pitch - first.pitch) > self.steady_deg

    def clear(self) -> None:
        self.frames.clear()
        self._leads.clear()
