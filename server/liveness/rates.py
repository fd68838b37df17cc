"""How often each step of a live check is analysed: the unit of cost the admission plans by. Pure.

A check goes through steps (waiting for a neutral face, each challenge while it is awaited, a movement
under way, the return to neutral); each needs frames at its own rate. The rates are the lowest at which
every verdict of the shared clip cases stays what it is with every frame, from every sampling phase (a
rung higher where noted),
measured with `python -m server bench --step-rates VIDEOS_DIR` (realname_tools/bench/step_rates.py; the
figures and their margins are in docs/benchmarks.md). 0 means every frame the page sends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .challenges import Challenge

START = "start"  # waiting for a neutral, steady, frontal face: the first baseline
RETURN = "return"  # waiting for the face back at neutral between challenges: the baseline renewed
MOVING = "moving"  # a movement under way: its hold, a wrong turn's 0.4 s, a blink's closing
NEUTRAL = "neutral"  # a neutral face seen, held (start or return): its stretch becomes the baseline
STEPS: tuple[str, ...] = (START, RETURN, NEUTRAL, MOVING, *(c.value for c in Challenge))  # a challenge: awaited

# Frames a second the page sends at most (server/web/pages.py asks the camera and its encoder for them).
SEND_FPS = 20.0
# A frame this share of an interval after the last one taken is on time: cameras jitter, and a clock's
# rounding puts every other frame of 12 of 20 a hair under 0.1 s (analyzer.frame_due, spoof/flatness.py).
ON_TIME = 0.9


# Measured on the 18 clip cases x 4 sampling phases at 20 fps sent: each step lowered along the ladder (20, 15,
# 12, 10, 8, 6, 5), the other steps at these rates, while every verdict stays what it is with every frame
# and no passed check ends over 0.25 s later. The engine times its holds in media time whatever the rate
# (holds.held), so the waits for a neutral face need few frames. The neutral stretch (its frames make the
# baseline and the ask's moment) runs the landmarker at a lower rate and the frames between are watched
# (change_watch.py, as is the blink awaited below whatever its rate): one whose eyes or face changed since
# the last analysed frame is analysed whatever the rate, so the frames skipped look like an analysed one.
def _measured() -> dict[str, float]:
    return {
        START: 5.0,  # nothing changed down to 5
        RETURN: 5.0,  # nothing changed down to 5
        # With the watch, and the frame on which the stretch has lasted its time analysed whatever the rate
        # (change_watch.stretch_due: else the ask came up to a frame interval later, into a clip's blink 80
        # ms after it): nothing changed down to 8; at 6 a wrong turn of the talking d12 clip passed. 10, a
        # rung above. Without the watch, at 15 that wrong turn passed already (the baseline moved).
        NEUTRAL: 10.0,
        # Lowest unchanged 8 (at 6 a turn of the 4-challenge clip and a marginal one, 1.3 degrees over its
        # threshold, were missed); with the head waits at 8, 12 (at 10 the marginal one): 12, the lowest
        # unchanged in both, a rung above, as live frames arrive with jitter, and late on a busy machine.
        MOVING: 12.0,
        # Head movements: nothing changed down to 5 (6: a rung above the floor). A turn fast enough to leave
        # the landmarker's reach between two frames keeps the over-rotation grace (engine: the turn is seen
        # as the face comes back), and a fast turn may move the face 0.3 of the frame between two frames
        # (engine._same_face: not a swap).
        **{c.value: 6.0 for c in Challenge if c.is_head_pose},
        # A blink (100-400 ms): every second frame, the watch analysing every frame whose eyes changed. With
        # the watch nothing changed on the clips down to 5 (without it, at 5 four cases passed 1.2-10 s
        # later, a blink missed; at 6 one). Live through Chromium (`python -m server customer-time --kinds
        # blink --runs 10`, load 5): 20 of 20 blinks seen at 10; at 5, 1 of 10 was missed twice (load 7-9),
        # as 2 of 15 at 15 without the watch. 10, not the clips' 5: live is the rule.
        Challenge.BLINK.value: 10.0,
        # Nothing changed down to 5 (two clips smile): a rung above it.
        Challenge.SMILE.value: 8.0,
        Challenge.OPEN_MOUTH.value: 5.0,
    }


# The margin, from the same measurement: the rung below the lowest unchanged one, where some verdict changed
# or a passed check ended over 0.25 s later (None: nothing changed down to the ladder's floor, 5).
FIRST_CHANGED_FPS: dict[str, float | None] = {
    START: None,
    RETURN: None,
    NEUTRAL: 6.0,
    MOVING: 6.0,
    Challenge.TURN_LEFT.value: None,
    Challenge.TURN_RIGHT.value: None,
    Challenge.LOOK_UP.value: None,
    Challenge.LOOK_DOWN.value: None,
    Challenge.BLINK.value: 5.0,  # live, with the watch (8 and 6 not tried live); on the clips none down to 5
    Challenge.SMILE.value: None,
    Challenge.OPEN_MOUTH.value: None,
}


# The share of a check's time in each step, on the same cases at these rates: what a check costs on average.
TIME_SHARE = {
    START: 0.13,
    RETURN: 0.12,
    NEUTRAL: 0.071,
    MOVING: 0.077,
    Challenge.BLINK.value: 0.068,
    Challenge.TURN_LEFT.value: 0.138,
    Challenge.TURN_RIGHT.value: 0.168,
    Challenge.LOOK_UP.value: 0.111,
    Challenge.LOOK_DOWN.value: 0.003,
    Challenge.SMILE.value: 0.102,
    Challenge.OPEN_MOUTH.value: 0.011,
}


# Frames a second the page is asked to send in each step (0: SEND_FPS): what the server receives, decrypts
# and decodes. A step's frame decides the next step, and the page hears of it a round trip and an encoder
# frame later, so a step is sent at the rate of the steps its frames may lead to, not only at its own: a
# wait for a neutral face at every frame (its stretch, NEUTRAL, needs every frame from the first: the ask's
# moment and the baseline come from it), a wait for a movement at the movement's rate (MOVING, analysed
# at 12: every second frame of 20, so 10 sent is the same frames). Measured with `python -m server bench
# --sent-rates VIDEOS_DIR` (realname_tools/bench/step_rates.py `sent_rates`): the 18 clip cases x 4
# sampling phases, the ask heard 0.1, 0.3 and 0.5 s late, Chromium keeping 3 of 5 frames at 12 of 20:
# every verdict unchanged at these; the waits at 8 or the returns at 10 changed some (docs/benchmarks.md).
def _sent() -> dict[str, float]:
    return {
        START: 0.0,
        RETURN: 0.0,
        NEUTRAL: 0.0,
        MOVING: 10.0,
        **{c.value: 10.0 for c in Challenge if c.is_head_pose},
        Challenge.BLINK.value: 0.0,
        Challenge.SMILE.value: 10.0,
        Challenge.OPEN_MOUTH.value: 10.0,
    }


@dataclass(frozen=True)
class StepRates:
    """Analysed frames a second per step (0: every frame sent)."""

    fps: dict[str, float] = field(default_factory=_measured)
    send_fps: float = SEND_FPS
    sent: dict[str, float] = field(default_factory=_sent)

    def of(self, step: str) -> float:
        return self.fps.get(step, 0.0)

    def effective(self, step: str) -> float:
        """Frames a second the step is analysed at, live: its rate, at most what the page sends."""
        rate = self.of(step)
        return self.send_fps if not rate else min(rate, self.send_fps)

    def on_full_stream(self, step: str) -> float:
        """Frames a second the step is analysed at when the page sends every frame."""
        return self._taken_of(self.send_fps, step)

    def analysed_fps(self, step: str) -> float:
        """Frames a second the step is analysed at, live, of the frames the page sends in it (`sent_fps`)."""
        return self._taken_of(self.sent_fps(step), step)

    def _taken_of(self, stream_fps: float, step: str) -> float:
        """`frame_due` takes every n-th frame of a stream (12 of 20: every second, 10; 8 of 10: every second, 5)."""
        every = max(1, math.ceil(round(ON_TIME * stream_fps / self.effective(step), 6)))
        return stream_fps / every

    def sent_fps(self, step: str) -> float:
        """Frames a second the page is asked to send in the step: never fewer than it analyses now."""
        rate = self.sent.get(step, 0.0)
        return self.send_fps if not rate else max(min(rate, self.send_fps), self.on_full_stream(step))

    def planned_fps(self, shares: dict[str, float] | None = None) -> float:
        """Analysed frames a second of a check on average: each step's analysed rate by its share of the time."""
        shares = TIME_SHARE if shares is None else shares
        whole = sum(shares.values())
        return round(sum(share * self.analysed_fps(step) for step, share in shares.items()) / whole, 2) if whole else self.send_fps

    def with_margins(self) -> dict[str, dict[str, float | None]]:
        """Each step's rate, the rate below which the clip cases changed, its share of a check's time, and the
        frames a second the page sends in it and the analysis takes of them."""
        return {
            step: {"fps": self.effective(step), "first_changed_fps": FIRST_CHANGED_FPS.get(step), "time_share": TIME_SHARE.get(step),
                   "sent_fps": self.sent_fps(step), "analysed_fps": self.analysed_fps(step)}
            for step in STEPS
        }

    def with_rate(self, step: str, fps: float) -> StepRates:
        return StepRates({**self.fps, step: fps}, self.send_fps, self.sent)

    def with_sent(self, sent: dict[str, float]) -> StepRates:
        return StepRates(self.fps, self.send_fps, sent)
