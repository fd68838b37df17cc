"""The active-liveness state machine: pure logic over a stream of FrameSignals, no I/O, no clock of its own.

Flow: wait for a neutral, frontal, well-lit face (its pose and expression become the baseline), ask the
first challenge, wait until it is performed and held, wait for a return to neutral (which renews the
baseline), ask the next. Everything is measured against the baseline, so holding the phone at an angle
or moving it does not count as turning.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from statistics import median

from ..reasons import Reason
from . import rates
from .challenges import HEAD_POSE, Challenge
from .holds import Hold, SteadyStretch
from .light import Light, LightGate
from .rates import StepRates
from .signals import FrameSignals
from .thresholds import Thresholds


class Phase(StrEnum):
    START = "start"
    CHALLENGE = "challenge"
    RETURN = "return"
    DONE = "done"


class Hint(StrEnum):
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    TOO_FAR = "too_far"
    TOO_CLOSE = "too_close"
    NOT_CENTRED = "not_centred"
    TOO_BLURRY = "too_blurry"
    LOOK_STRAIGHT = "look_straight"
    NOT_SO_FAR = "not_so_far"


# Quality hints a head movement itself causes for a moment (the face shifts, narrows, blurs).
MOVEMENT_HINTS = frozenset({Hint.NOT_CENTRED, Hint.TOO_FAR, Hint.TOO_CLOSE, Hint.TOO_BLURRY})


@dataclass
class ChallengeRecord:
    type: Challenge
    asked_at: float | None = None
    completed_at: float | None = None
    passed: bool = False
    peak: float = 0.0  # degrees beyond neutral for head pose, blendshape rise for expressions
    onset_at: float | None = None  # first frame where the asked movement began (reaction time)

    def to_dict(self, t0: float = 0.0) -> dict:
        return {
            "type": self.type.value,
            "passed": self.passed,
            "asked_at_s": None if self.asked_at is None else round(self.asked_at - t0, 3),
            "completed_at_s": None if self.completed_at is None else round(self.completed_at - t0, 3),
            "peak": round(self.peak, 3),
            "onset_at_s": None if self.onset_at is None else round(self.onset_at - t0, 3),
        }

    @property
    def reaction_s(self) -> float | None:
        """From the prompt to the first matching movement."""
        if self.asked_at is None or self.onset_at is None:
            return None
        return self.onset_at - self.asked_at


@dataclass(frozen=True)
class Baseline:
    """The person's own neutral: head pose renewed before every challenge, expression taken at the start."""

    yaw: float
    pitch: float
    eyes_closed: float
    ear: float
    smile: float
    jaw_open: float

    @classmethod
    def of(cls, frames: list[FrameSignals]) -> Baseline:
        return cls(
            yaw=median(f.yaw for f in frames),
            pitch=median(f.pitch for f in frames),
            eyes_closed=median(f.eyes_closed for f in frames),
            ear=median(f.ear for f in frames),
            smile=median(f.smile for f in frames),
            jaw_open=median(f.jaw_open for f in frames),
        )

    def with_pose_of(self, frames: list[FrameSignals]) -> Baseline:
        return replace(self, yaw=median(f.yaw for f in frames), pitch=median(f.pitch for f in frames))


@dataclass(frozen=True)
class LivenessResult:
    passed: bool
    reason: Reason | None
    detail: str | None
    challenges: tuple[ChallengeRecord, ...]
    started_at: float
    finished_at: float
    frame_slots: tuple[str, ...]  # slots of the frames kept for face matching, in time order

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "reason": None if self.reason is None else self.reason.value,
            "detail": self.detail,
            "challenges": [c.to_dict(self.started_at) for c in self.challenges],
            "duration_s": round(self.finished_at - self.started_at, 3),
        }

    def challenge_spans(self, to_onset: bool = False) -> list[tuple[float, float]]:
        """From each asked challenge's prompt to its completion (or the check's end), on the frames' clock;
        `to_onset`: to the first sign of its movement when there was one instead (its reaction window)."""
        return [(c.asked_at, (to_onset and c.onset_at) or c.completed_at or self.finished_at) for c in self.challenges if c.asked_at is not None]


@dataclass(frozen=True)
class Prompt:
    """What the customer should be told now."""

    phase: Phase
    challenge: Challenge | None
    step: int  # challenges completed so far
    total: int
    hint: Hint | None


@dataclass(frozen=True)
class Verdict:
    """The engine's answer to one frame."""

    prompt: Prompt
    keep_frame: str | None = None  # store this frame under this slot for face matching
    result: LivenessResult | None = None


@dataclass
class _Tracking:
    """Where the face was last seen, for continuity and loss rules."""

    last_face: FrameSignals | None = None
    lost_since: float | None = None
    before_loss: FrameSignals | None = None
    grace: bool = False  # the loss followed a strong turn the asked way
    turned_away: bool = False  # the loss followed a head movement (asked, or under way): the face turned beyond reach
    returned_from_over_rotation: bool = False
    multiple_since: float | None = None


class LivenessEngine:
    def __init__(
        self,
        challenges: list[Challenge],
        thresholds: Thresholds | None = None,
        challenge_timeout_s: float = 8.0,
        start_timeout_s: float = 20.0,
        prompts_at: list[float] | None = None,
        step_rates: StepRates | None = None,
        light_gate: LightGate | None = None,
    ) -> None:
        if not challenges:
            raise ValueError("at least one challenge is needed")
        self.th = thresholds or Thresholds()
        self.rates = step_rates or StepRates()
        self.challenge_timeout_s = challenge_timeout_s
        self.start_timeout_s = start_timeout_s
        # A recorded clip: the page showed challenge i at prompts_at[i] (clip seconds); it is not asked sooner.
        self.prompts_at = prompts_at
        self.records = [ChallengeRecord(c) for c in challenges]
        self.phase = Phase.START
        self.index = 0
        self.baseline: Baseline | None = None
        self.result: LivenessResult | None = None
        self.t0: float | None = None
        self.phase_since = 0.0
        self.faces_seen = 0
        self.hint: Hint | None = None
        th = self.th
        self.neutral = SteadyStretch(th.neutral_steady_deg, th.neutral_hold_s, th.neutral_hold_frames, th.max_frame_gap_s)  # the baseline to be
        self._action_hold = Hold(th.hold_s, th.hold_frames, th.max_frame_gap_s)
        self._wrong_hold = Hold(th.wrong_hold_s, 2, th.max_frame_gap_s)
        self._last_t: float | None = None  # the frame analysed before this one
        self._gap = 0.0  # seconds since it
        self._eyes_were_closed = False
        self._moving = False  # a movement is under way: analysed at its own rate (rates.MOVING), its holds timed finely
        self._tracking = _Tracking()
        self._slot_scores: dict[str, float] = {}
        self._hint_counts: dict[Hint, int] = {}
        self.light_gate = light_gate  # live with PAD: the challenges wait for a face it can judge (light.py)
        self.light = Light.LIT

    # -- public -----------------------------------------------------------------------------------

    def prompt(self) -> Prompt:
        challenge = self.records[self.index].type if self.phase == Phase.CHALLENGE else None
        done = sum(r.passed for r in self.records)
        return Prompt(self.phase, challenge, done, len(self.records), self.hint)

    def step(self) -> str:
        """The current step, as `rates.STEPS` name it: its rate is what the check costs now."""
        if self.phase == Phase.CHALLENGE:
            lost = self._tracking.lost_since is not None  # a head turned beyond reach: its return is a movement
            return rates.MOVING if self._moving or (lost and self._awaiting_head_pose()) else self.records[self.index].type.value
        if self.neutral.frames:
            return rates.NEUTRAL
        return rates.START if self.phase == Phase.START else rates.RETURN

    def needed_fps(self) -> float:
        """Analysed frames a second the current step needs (0: every frame)."""
        return self.rates.of(self.step())

    def update(self, s: FrameSignals, face_noises: tuple[float | None, ...] = (), first_scoring: bool = False,
               noises_at: tuple[float, ...] | None = None) -> Verdict:  # PAD's scored frames and their stream times (light.py)
        if self.result is not None:
            return Verdict(self.prompt(), result=self.result)
        if self.t0 is None:
            self.t0 = self.phase_since = s.t
        if self.light_gate is not None and self.phase == Phase.START:
            self.light = self.light_gate.judge(face_noises, s.t - self.phase_since, first_scoring, noises_at and [t - self.t0 for t in noises_at])
        self._gap, self._last_t = (0.0 if self._last_t is None else max(0.0, s.t - self._last_t)), s.t
        if s.face_count:
            self.faces_seen += 1
        failure = self._check_presence(s)
        self.hint = self._hint(s)  # after the presence check: a face lost on this very frame has its cause noted
        if self.hint is not None:
            self._hint_counts[self.hint] = self._hint_counts.get(self.hint, 0) + 1
        if failure is not None:
            return self._finish(s.t, *failure)
        keep = None
        if s.face_count != 1:
            self._reset_holds()
        elif self._tracking.returned_from_over_rotation and self.phase == Phase.CHALLENGE:
            # The tracker lost the face mid-turn the asked way and the same face came back: a real turn.
            self._complete(s.t)
        else:
            if self.phase == Phase.START:
                keep = self._on_start(s)
            elif self.phase == Phase.CHALLENGE:
                failure = self._on_challenge(s)
            elif self.phase == Phase.RETURN:
                keep = self._on_return(s)
            if failure is not None:
                return self._finish(s.t, *failure)
        if self.result is None:
            failure = self._check_timeouts(s.t)
            if failure is not None:
                return self._finish(s.t, *failure)
        return Verdict(self.prompt(), keep_frame=keep, result=self.result)

    def finish(self, t: float, reason: Reason = Reason.STREAM_ENDED) -> LivenessResult:
        """End early (stream over, customer left); the verdict explains what was missing."""
        if self.result is not None:
            return self.result
        if self.faces_seen == 0:
            return self._finish(t, Reason.NO_FACE, None).result  # type: ignore[return-value]
        if self.phase == Phase.START and reason == Reason.STREAM_ENDED:
            return self._finish(t, Reason.NOT_READY, self._dominant_hint()).result  # type: ignore[return-value]
        return self._finish(t, reason, None).result  # type: ignore[return-value]

    # -- phases -----------------------------------------------------------------------------------

    def _on_start(self, s: FrameSignals) -> str | None:
        th = self.th
        ok = (
            self._quality_ok(s)
            and abs(s.yaw) <= th.frontal_yaw_deg
            and abs(s.pitch) <= th.frontal_pitch_deg
            and s.eyes_closed < th.eyes_closed
            and s.jaw_open < th.jaw_open
        )
        keep = self._keep_if_best("start", s) if ok else None
        if self._collect_neutral(s, ok) and self._due(0, s.t) and self.light == Light.LIT:
            self.baseline = Baseline.of(self.neutral.frames)
            self._ask(s.t)
        return keep

    def _on_challenge(self, s: FrameSignals) -> tuple[Reason, str | None] | None:
        record = self.records[self.index]
        amount = self._action_amount(record.type, s)
        onset, pose = self.th.onset_fraction, (Challenge.TURN_LEFT, Challenge.LOOK_UP)
        turned = any(abs(self._pose_delta(c, s)) >= onset * self._pose_threshold(c) for c in pose)
        self._moving = turned or (not record.type.is_head_pose and amount >= onset * self._onset_threshold(record.type))
        record.peak = max(record.peak, amount)
        if record.onset_at is None and amount >= self.th.onset_fraction * self._onset_threshold(record.type):
            record.onset_at = s.t
        if record.type == Challenge.BLINK:
            done = self._blink_done(s, record)
        else:
            # Once reached, a head movement holds while it stays near its threshold: a frame a hair under it
            # (which frames are analysed decides which) does not start the hold again.
            factor = self.th.hold_release_factor if self._action_hold.since is not None else 1.0
            done = self._action_hold.update(self._action_reached(record.type, s, factor), s.t, self._gap)
        if done:
            self._complete(s.t)
            return None
        if record.type.is_head_pose:
            wrong = self._wrong_pose(record.type, s)
            if self._wrong_hold.update(wrong is not None, s.t, self._gap):
                return Reason.WRONG_ACTION, wrong.value if wrong else None
        return None

    def _wrong_pose(self, asked: Challenge, s: FrameSignals) -> Challenge | None:
        """The opposite movement, or another head movement well beyond its threshold."""
        for other in HEAD_POSE - {asked}:
            factor = 1.0 if other == asked.opposite else self.th.wrong_other_factor
            if self._pose_reached(other, s, factor):
                return other
        return None

    def _on_return(self, s: FrameSignals) -> str | None:
        b, th = self.baseline, self.th
        assert b is not None
        ok = (
            abs(s.yaw - b.yaw) <= th.neutral_yaw_deg
            and abs(s.pitch - b.pitch) <= th.neutral_pitch_deg
            and not self._eyes_closed(s)
        )
        keep = self._keep_if_best(f"after_{self.index}", s) if ok and self._quality_ok(s) else None
        if self._collect_neutral(s, ok) and self._due(self.index + 1, s.t):
            self.baseline = b.with_pose_of(self.neutral.frames)
            self.index += 1
            self._ask(s.t)
        return keep

    # -- actions ----------------------------------------------------------------------------------

    def _pose_delta(self, challenge: Challenge, s: FrameSignals) -> float:
        """Degrees moved from the baseline in the challenge's direction (negative: the other way)."""
        b = self.baseline
        assert b is not None
        return {
            Challenge.TURN_LEFT: s.yaw - b.yaw,
            Challenge.TURN_RIGHT: b.yaw - s.yaw,
            Challenge.LOOK_UP: s.pitch - b.pitch,
            Challenge.LOOK_DOWN: b.pitch - s.pitch,
        }[challenge]

    def _pose_threshold(self, challenge: Challenge) -> float:
        th = self.th
        return {
            Challenge.TURN_LEFT: th.turn_deg,
            Challenge.TURN_RIGHT: th.turn_deg,
            Challenge.LOOK_UP: th.look_up_deg,
            Challenge.LOOK_DOWN: th.look_down_deg,
        }[challenge]

    def _pose_reached(self, challenge: Challenge, s: FrameSignals, factor: float = 1.0) -> bool:
        if challenge in (Challenge.LOOK_UP, Challenge.LOOK_DOWN):
            # Measured pitch drifts by up to ~10 degrees in a strong turn: only trust it facing forward.
            if abs(self._pose_delta(Challenge.TURN_LEFT, s)) >= self.th.turn_deg:
                return False
        return self._pose_delta(challenge, s) >= factor * self._pose_threshold(challenge)

    def _action_amount(self, challenge: Challenge, s: FrameSignals) -> float:
        b = self.baseline
        assert b is not None
        if challenge.is_head_pose:
            return self._pose_delta(challenge, s)
        if challenge == Challenge.BLINK:
            return s.eyes_closed - b.eyes_closed
        if challenge == Challenge.SMILE:
            return s.smile - b.smile
        return s.jaw_open - b.jaw_open

    def _onset_threshold(self, challenge: Challenge) -> float:
        """The full movement, in the units of _action_amount."""
        if challenge.is_head_pose:
            return self._pose_threshold(challenge)
        th = self.th
        return {Challenge.BLINK: th.eyes_closed_rise, Challenge.SMILE: th.smile_rise}.get(challenge, th.jaw_open_rise)

    def _action_reached(self, challenge: Challenge, s: FrameSignals, factor: float = 1.0) -> bool:
        b, th = self.baseline, self.th
        assert b is not None
        if challenge.is_head_pose:
            return self._pose_reached(challenge, s, factor)
        if challenge == Challenge.SMILE:
            return s.smile >= max(th.smile, b.smile + th.smile_rise)
        if challenge == Challenge.OPEN_MOUTH:
            return s.jaw_open >= max(th.jaw_open, b.jaw_open + th.jaw_open_rise) and s.mouth_open_ratio >= th.mouth_open_ratio
        return self._eyes_closed(s)

    def _eyes_closed(self, s: FrameSignals) -> bool:
        b, th = self.baseline, self.th
        assert b is not None
        by_blendshape = s.eyes_closed >= max(th.eyes_closed, b.eyes_closed + th.eyes_closed_rise)
        by_aspect = b.ear > 0 and s.ear <= th.ear_closed_ratio * b.ear
        return by_blendshape or by_aspect

    def _blink_done(self, s: FrameSignals, record: ChallengeRecord) -> bool:
        """A blink is both eyes closing and opening again, measured against this person's open eyes. One
        begun before the prompt could be read is one of the 15-20 a minute everyone makes: the next answers."""
        if self._eyes_closed(s):
            self._eyes_were_closed = True
            return False
        if (reaction := record.reaction_s) is not None and reaction < self.th.reaction_floor_s:
            self._eyes_were_closed = False  # its onset is forgotten once the eyes are open again
            if self._action_amount(Challenge.BLINK, s) < self.th.onset_fraction * self._onset_threshold(Challenge.BLINK):
                record.onset_at = None
        return self._eyes_were_closed

    # -- presence, continuity, timeouts -----------------------------------------------------------

    def _check_presence(self, s: FrameSignals) -> tuple[Reason, str | None] | None:
        th, tr = self.th, self._tracking
        if s.face_count >= 2:
            tr.multiple_since = s.t if tr.multiple_since is None else tr.multiple_since
            if s.t - tr.multiple_since >= th.multiple_faces_s:
                return Reason.MULTIPLE_FACES, None
            return None
        tr.multiple_since = None
        started = self.phase in (Phase.CHALLENGE, Phase.RETURN)
        if s.face_count == 0:
            if tr.lost_since is None and tr.last_face is not None:
                tr.lost_since = s.t
                tr.before_loss = tr.last_face
                # The grace: the last face was turned the asked way, or still (a head movement awaited at a
                # few frames a second may leave reach between two frames); not one turned another way.
                still = self._awaiting_head_pose() and not self._head_moved(tr.last_face)
                tr.grace = started and (self._strong_turn_asked_way(tr.last_face) or still)
                tr.turned_away = started and self._turned_away(tr.last_face)
            if started and tr.lost_since is not None:
                allowed = th.over_rotation_grace_s if tr.grace else th.face_lost_s
                if s.t - tr.lost_since > allowed:
                    return Reason.FACE_LOST, None
            return None
        previous = tr.before_loss if tr.lost_since is not None else tr.last_face
        if started and previous is not None and s.t - previous.t <= max(th.continuity_window_s, th.over_rotation_grace_s):
            if not self._same_face(previous, s, across_loss=tr.lost_since is not None):
                return Reason.FACE_SWAP, None
        # Back from beyond reach: a turn the asked way seen on either side of the loss. Awaited at a few
        # frames a second, a fast turn may leave reach between two frames (the last face still neutral):
        # then the face coming back, analysed at a movement's rate, shows it.
        before = tr.before_loss if tr.lost_since is not None else None
        turn_seen = before is not None and (self._strong_turn_asked_way(before) or (self._awaiting_head_pose() and self._strong_turn_asked_way(s)))
        tr.returned_from_over_rotation = started and tr.grace and turn_seen
        tr.last_face, tr.lost_since, tr.before_loss, tr.grace, tr.turned_away = s, None, None, False, False
        return None

    def _awaiting_head_pose(self) -> bool:
        return self.phase == Phase.CHALLENGE and self.records[self.index].type.is_head_pose

    def _strong_turn_asked_way(self, s: FrameSignals) -> bool:
        record = self.records[self.index]
        if not record.type.is_head_pose or self.baseline is None:
            return False
        return self._pose_delta(record.type, s) >= 0.5 * self._pose_threshold(record.type)

    def _turned_away(self, s: FrameSignals) -> bool:
        """A head movement is asked for, or the head had begun one: a face lost now has most likely turned
        beyond what the landmarker follows (at 10 analysed frames a second, or in a blurred frame, the last
        face seen may be from the movement's start), while the customer still sees it in the preview."""
        if self.baseline is None:
            return False
        if self.phase == Phase.CHALLENGE and self.records[self.index].type.is_head_pose:
            return True
        return self._head_moved(s)

    def _head_moved(self, s: FrameSignals) -> bool:
        """The head is turned or tilted from the baseline by at least a movement's onset, either way."""
        if self.baseline is None:
            return False
        onset = self.th.onset_fraction
        return any(abs(self._pose_delta(c, s)) >= onset * self._pose_threshold(c) for c in (Challenge.TURN_LEFT, Challenge.LOOK_UP))

    def _same_face(self, a: FrameSignals, b: FrameSignals, across_loss: bool = False) -> bool:
        assert a.box is not None and b.box is not None
        (ax, ay), (bx, by) = a.centre, b.centre
        jump = ((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5
        ha, hb = a.box[3] - a.box[1], b.box[3] - b.box[1]
        low, high = self.th.size_ratio_range
        # Between two analysed frames the face may move its jump per `max_centre_jump_s`: a fast turn moves
        # it 0.3 of the frame in 0.2 s, two frames apart at 5 a second. Across a loss it comes back near
        # where it left.
        window = self.th.max_centre_jump_s
        allowed = self.th.max_centre_jump * (1.0 if across_loss else max(1.0, min(b.t - a.t, self.th.max_frame_gap_s) / window))
        return jump <= allowed and ha > 0 and low <= hb / ha <= high

    def _check_timeouts(self, t: float) -> tuple[Reason, str | None] | None:
        waited = t - self.phase_since
        if self.phase == Phase.START and waited > self.start_timeout_s:
            if self.faces_seen == 0:
                return Reason.NO_FACE, None
            return (Reason.TOO_DARK, None) if self.hint == Hint.TOO_DARK else (Reason.NOT_READY, self._dominant_hint())
        if self.phase == Phase.CHALLENGE and waited > self.challenge_timeout_s:
            return Reason.TIMEOUT, self.records[self.index].type.value
        if self.phase == Phase.RETURN and waited > self.challenge_timeout_s:
            return Reason.NOT_NEUTRAL, None
        return None

    # -- helpers ----------------------------------------------------------------------------------

    def _quality_ok(self, s: FrameSignals) -> bool:
        return self._quality_hint(s) is None

    def _quality_hint(self, s: FrameSignals) -> Hint | None:
        th = self.th
        if s.brightness < th.min_brightness:
            return Hint.TOO_DARK
        if s.brightness > th.max_brightness:
            return Hint.TOO_BRIGHT
        if s.face_size < th.min_face_size or s.face_px < th.min_face_px:
            return Hint.TOO_FAR
        if s.face_size > th.max_face_size:
            return Hint.TOO_CLOSE
        cx, cy = s.centre
        if max(abs(cx - 0.5), abs(cy - 0.5)) > th.max_centre_offset:
            return Hint.NOT_CENTRED
        if s.sharpness < th.min_sharpness:
            return Hint.TOO_BLURRY
        return None

    def _hint(self, s: FrameSignals) -> Hint | None:
        """What to tell the customer about this frame. During a head movement the hint follows the
        movement: a face turned out of the landmarker's reach is "not so far" (the customer sees their
        face in the preview, "we can't see your face" would contradict it), and the off-centre, smaller
        or blurred face a turn makes is not asked to be put back while the movement is under way."""
        if s.face_count == 0:
            tr = self._tracking
            if tr.lost_since is not None and (tr.grace or tr.turned_away):
                return Hint.NOT_SO_FAR
            return Hint.NO_FACE
        if s.face_count >= 2:
            return Hint.MULTIPLE_FACES
        quality = self._quality_hint(s)
        moving = self.phase == Phase.CHALLENGE and (self._moving or self._head_moved(s))
        if quality is not None and not (moving and quality in MOVEMENT_HINTS):
            return quality
        if self.phase == Phase.START and (abs(s.yaw) > self.th.frontal_yaw_deg or abs(s.pitch) > self.th.frontal_pitch_deg):
            return Hint.LOOK_STRAIGHT
        if self.phase == Phase.START and self.light == Light.DARK:
            return Hint.TOO_DARK
        return None

    def _dominant_hint(self) -> str | None:
        return max(self._hint_counts.items(), key=lambda item: item[1])[0].value if self._hint_counts else None

    def _reset_holds(self) -> None:
        self.neutral.clear()
        self._moving = False
        for hold in (self._action_hold, self._wrong_hold):
            hold.reset()

    def _collect_neutral(self, s: FrameSignals, ok: bool) -> bool:
        """True once the face has been neutral, and steady, long enough (holds.SteadyStretch)."""
        return self.neutral.update(s, ok, self._gap)

    def _keep_if_best(self, slot: str, s: FrameSignals) -> str | None:
        """Frames for face matching: frontal, eyes open, sharp and large."""
        b = self.baseline
        yaw, pitch = s.yaw - (b.yaw if b else 0.0), s.pitch - (b.pitch if b else 0.0)
        score = s.sharpness * s.face_px / (1.0 + abs(yaw) + abs(pitch)) * (1.0 - s.eyes_closed)
        if score > self._slot_scores.get(slot, 0.0):
            self._slot_scores[slot] = score
            return slot
        return None

    def _due(self, index: int, t: float) -> bool:
        return self.prompts_at is None or t >= self.prompts_at[index]

    def _ask(self, t: float) -> None:
        self.phase, self.phase_since = Phase.CHALLENGE, t
        self.records[self.index].asked_at = t
        self._reset_holds()
        self._eyes_were_closed = False

    def _complete(self, t: float) -> None:
        record = self.records[self.index]
        record.completed_at = t
        record.passed = True
        if self.index == len(self.records) - 1:
            self._finish(t, None, None)
            return
        self.phase, self.phase_since = Phase.RETURN, t
        self._reset_holds()

    def _finish(self, t: float, reason: Reason | None, detail: str | None) -> Verdict:
        self.phase = Phase.DONE
        slots = tuple(slot for slot in ["start", *(f"after_{i}" for i in range(len(self.records)))] if slot in self._slot_scores)
        self.result = LivenessResult(
            passed=reason is None,
            reason=reason,
            detail=detail,
            challenges=tuple(replace(r) for r in self.records),
            started_at=self.t0 if self.t0 is not None else t,
            finished_at=t,
            frame_slots=slots,
        )
        return Verdict(self.prompt(), result=self.result)
