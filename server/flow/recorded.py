"""Recorded checks: the fallback when a peer connection cannot be made (or the browser has no WebRTC).

A recording is weaker evidence than a live stream, so the door is narrow. With a live key it is offered
only after the server saw this session's peer connection fail, or to a phone the check was handed to.
Each plan uses one of the session's attempts. The server fixes a timetable (see liveness/schedule.py) and
a one-time nonce, but reveals each challenge only when the recording reaches its prompt (`prompt`), so
no footage can be chosen to fit the list beforehand; a clip uploaded before its timetable could have been
recorded fails. The page shows each prompt at its time while MediaRecorder records, then uploads the clip.

An upload is checked (nonce, one in flight per session, a bound on those held at once) before its body is
read. The clip is checked from its container and stream headers before it is decoded, then decoded and
analysed on a low-priority worker of its own (never the live analysis threads, never a live admission
place), at the live analysis rate and under a CPU budget, by the same engine (asking nothing before its
prompt), the same passive anti-spoofing and risk signals, then decided like a live check, except that on
a live key any stream (injection) signal sends it to review. Redaction cancels a check in flight.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import io
import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass

from ..errors import FlowError
from ..liveness.challenges import Challenge
from ..liveness.replay import ClipCancelled, ClipLimits, ClipOverBudget, ClipTooLong, ClipTooShort, ReplayReport, VideoError, replay_video
from ..liveness.schedule import LENGTH_SLACK_S, RecordingSchedule, off_schedule
from ..reasons import Reason
from ..sessions import CheckPath, Session, Status
from ..spoof.pad import PadFramePolicy, PadResult
from ..spoof.signals import Action, Level, RiskSignal, SignalCode
from ..storage.handoffs import HandoffRecords
from ..storage.store import ConflictError
from .attempts import LiveAttempts, liveness_record
from .customers import Customer
from .tokens import new_token, token_hash

log = logging.getLogger(__name__)

UPLOAD_GRACE_S = 60.0  # after the clip's end, for stopping the recorder and uploading
PROMPT_EARLY_S = 1.0  # a challenge is revealed this long before its prompt at the soonest (the page asks ahead)
MAX_HELD = 4  # recordings this process holds at once (being received, waiting or analysed): ~4 x 8 MiB
CPU_BUDGET_S = 30.0  # of the decoding thread per clip; a genuine 19 s clip takes a few seconds
MAX_SIDE = 1920  # pixels a side: a browser camera's frames; larger ones are refused before decoding
RECORDED_FPS = 15.0  # frames of a recorded clip analysed a second at most (its steps are fixed by the timetable, not paced)
# Risk signals about the person, not the stream: the rest speak of injection tools and virtual cameras.
PAD_SIGNALS = frozenset({SignalCode.PAD_ATTACK, SignalCode.PAD_UNCERTAIN, SignalCode.PAD_PASSED, SignalCode.PAD_UNSCORED, SignalCode.PAD_UNAVAILABLE})


@dataclass(frozen=True)
class RecordingPlan:
    session_id: str
    nonce_hash: str
    challenges: tuple[Challenge, ...]
    schedule: RecordingSchedule
    issued_at: float
    expires_at: float

    def to_page(self, nonce: str) -> dict:
        """The timetable and the nonce; the challenges themselves come one by one (`challenge_at`)."""
        return {"nonce": nonce, "count": len(self.challenges), **self.schedule.to_dict()}

    def challenge_at(self, index: int, now: float) -> Challenge | None:
        """Challenge `index` if the recording has reached its prompt (the clip starts after the plan is
        issued) and its slot has not passed; else None."""
        if not 0 <= index < len(self.challenges):
            return None
        prompt_at = self.issued_at + self.schedule.prompts_at[index]
        return self.challenges[index] if prompt_at - PROMPT_EARLY_S <= now <= prompt_at + self.schedule.slot_s else None

    def made_too_soon(self, now: float) -> bool:
        """Uploaded before a clip of the timetable's length could have been recorded after the plan."""
        return now < self.issued_at + self.schedule.duration_s - LENGTH_SLACK_S[0]


@dataclass(frozen=True)
class Upload:
    """A claimed nonce: the one upload in flight for its session, from before its body is read."""

    session: Session
    plan: RecordingPlan
    customer: Customer


def stricter(signals: Iterable[RiskSignal], sandbox: bool) -> list[RiskSignal]:
    """A recorded check on a live key goes to review when any stream (injection) signal fires; sandbox
    keys only flag, as merchants test with scripted clients and fake cameras."""
    if sandbox:
        return list(signals)
    return [
        dataclasses.replace(s, action=Action.REVIEW) if s.code not in PAD_SIGNALS and s.level != Level.LOW and s.action == Action.NONE else s
        for s in signals
    ]


class RecordedChecks:
    def __init__(self, attempts: LiveAttempts, executor: Executor) -> None:
        self.attempts = attempts
        # One low-priority thread (flow/cputime.background_thread) that the live checks never wait for:
        # clips are analysed one at a time, and their CPU is left out of the live admission's cost.
        self.executor = executor
        self.plans: dict[str, RecordingPlan] = {}  # one per session; a new plan makes the old nonce stale
        self.uploads: dict[str, Upload] = {}  # session id -> the upload in flight (received, waiting, analysed)
        self._stops: dict[str, threading.Event] = {}  # session id -> stops its analysis at the next frame
        self._checks: dict[str, asyncio.Task] = {}
        attempts.lifecycle.on_redact.append(self.cancel)

    # -- the plan ---------------------------------------------------------------------------------

    def plan(self, session: Session, customer: Customer, camera_label: str = "") -> dict:
        """A plan for the page: the timetable and the nonce the clip must come back with. It uses one of
        the session's attempts, whatever comes of it."""
        attempts = self.attempts
        attempts.check_may_start(session, customer, camera_label)
        if session.id in attempts.live or session.id in self.uploads:
            raise FlowError("already_live", "a check is already running for this session")
        if not session.sandbox and not self._may_record(session):
            attempts.store.audit("customer", "recorded.refused", session.id, {"reason": "no_connection_failure"})
            raise FlowError("recording_unavailable", "a recorded check is offered only when the live connection fails; continue on a phone instead", 403)
        if not attempts.store.take_attempt(session.id, session.attempts):
            raise FlowError("wrong_state", "the session changed meanwhile")
        self._forget_expired()
        challenges = tuple(attempts.lifecycle.challenges_for(session))
        schedule = RecordingSchedule(len(challenges))
        nonce, now = new_token(), time.time()
        plan = RecordingPlan(session.id, token_hash(nonce), challenges, schedule, now, now + schedule.duration_s + UPLOAD_GRACE_S)
        self.plans[session.id] = plan
        attempts.store.audit("customer", "recorded.planned", session.id, {"challenges": len(challenges), "attempt": session.attempts + 1})
        return plan.to_page(nonce)

    def prompt(self, session: Session, nonce: str, index: int) -> dict:
        """Challenge `index` of the session's current plan, once the recording has reached its prompt."""
        plan = self._plan_for(session, nonce)
        challenge = plan.challenge_at(index, time.time())
        if challenge is None:
            raise FlowError("prompt_not_due", "this prompt is not due now")
        return {"index": index, "challenge": challenge.value}

    def _may_record(self, session: Session) -> bool:
        """The server saw this session's peer connection fail, or the check was handed to a phone."""
        if HandoffRecords(self.attempts.store).handed_off(session.id):
            return True
        return any(row["action"] == "live.unconnected" for row in self.attempts.store.audit_for(session.id))

    def _plan_for(self, session: Session, nonce: str) -> RecordingPlan:
        plan = self.plans.get(session.id)
        if plan is None or not hmac.compare_digest(plan.nonce_hash, token_hash(nonce)):
            self.attempts.store.audit("customer", "recorded.refused", session.id, {"reason": "unknown_nonce"})
            raise FlowError("recording_stale", "this recording was not made for the current check; record again")
        if plan.expires_at < time.time():
            del self.plans[session.id]
            self.attempts.store.audit("customer", "recorded.refused", session.id, {"reason": "expired_nonce"})
            raise FlowError("recording_stale", "this recording's time has passed; record again")
        return plan

    # -- the upload -------------------------------------------------------------------------------

    def claim(self, session: Session, nonce: str, customer: Customer) -> Upload:
        """Before the body is read: the nonce is the plan's (used once, whatever comes of it), no other
        upload is in flight for the session, and the process holds fewer than MAX_HELD recordings."""
        if session.id in self.uploads:
            raise FlowError("already_live", "a recording is already being checked for this session")
        plan = self._plan_for(session, nonce)
        if len(self.uploads) >= MAX_HELD:
            raise FlowError("busy", "many recordings are being checked; send it again in a minute", 503)
        del self.plans[session.id]
        self.attempts.check_may_start(session, customer, attempt_taken=True)
        upload = Upload(session, plan, customer)
        self.uploads[session.id] = upload
        return upload

    def release(self, upload: Upload) -> None:
        if self.uploads.get(upload.session.id) is upload:
            del self.uploads[upload.session.id]

    async def submit(self, upload: Upload, clip: bytes) -> Session:
        """Analyse the claimed upload's clip and record the attempt's outcome. The analysis goes on if the
        customer's request ends; a redaction cancels it (FlowError, never a 500)."""
        session = upload.session
        try:
            session = self.attempts.lifecycle.move(session, Status.LIVE, "customer", failure_reason=None)
        except ConflictError:  # the session changed meanwhile (a live check began, the merchant erased it)
            self.release(upload)
            raise FlowError("wrong_state", "the session changed meanwhile") from None
        self.attempts.store.audit("customer", "live.started", session.id, {"attempt": session.attempts, "path": CheckPath.RECORDED.value})
        stop = self._stops[session.id] = threading.Event()
        check = self._checks[session.id] = asyncio.ensure_future(self._analyse(session, upload.plan, clip, stop))
        check.add_done_callback(lambda _: self.release(upload))  # held until its analysis ends
        try:
            session = await asyncio.shield(check)
        except asyncio.CancelledError:
            if not check.cancelled():
                raise  # the request itself was cancelled: the check goes on, and ends the session's way
            raise FlowError("wrong_state", "the session was erased during the check") from None
        except ConflictError:  # the session changed meanwhile (the merchant erased it)
            raise FlowError("wrong_state", "the session changed meanwhile") from None
        self.attempts.count_failure(session, upload.customer)
        return session

    async def cancel(self, session_id: str) -> None:
        """Stop the session's recorded check (its analysis stops at the next frame) before a redaction."""
        check = self._checks.get(session_id)
        if check is None or check.done():
            return
        self._stops[session_id].set()
        check.cancel()
        await asyncio.gather(check, return_exceptions=True)

    def shutdown(self) -> None:
        """Stop every analysis in flight at its next frame (the service is stopping)."""
        for stop in list(self._stops.values()):
            stop.set()

    async def _analyse(self, session: Session, plan: RecordingPlan, clip: bytes, stop: threading.Event) -> Session:
        try:
            return await self._judge(session, plan, clip, stop)
        finally:
            self._stops.pop(session.id, None)
            self._checks.pop(session.id, None)

    async def _judge(self, session: Session, plan: RecordingPlan, clip: bytes, stop: threading.Event) -> Session:
        attempts, settings = self.attempts, self.attempts.settings
        path = CheckPath.HANDOFF if HandoffRecords(attempts.store).handed_off(session.id) else CheckPath.RECORDED
        short, long = LENGTH_SLACK_S  # the clip's length, from its packets' timestamps before decoding
        limits = ClipLimits(
            max_seconds=plan.schedule.duration_s + long,
            min_seconds=plan.schedule.duration_s - short,
            max_pixels=settings.max_image_pixels,
            max_side=MAX_SIDE,
            analysis_fps=settings.live_analysis_fps or RECORDED_FPS,
            cpu_budget_s=CPU_BUDGET_S,
        )
        stats: dict = {"clip_bytes": len(clip)}
        if plan.made_too_soon(time.time()):
            return self._failed(session, Reason.OFF_SCHEDULE, "uploaded before its timetable could have been recorded", stats, path)
        loop = asyncio.get_running_loop()
        try:
            report = await loop.run_in_executor(self.executor, self._replay, clip, plan, limits, stop)
        except ClipCancelled:
            raise asyncio.CancelledError from None
        except (ClipTooLong, ClipTooShort) as error:
            return self._failed(session, Reason.RECORDING_LENGTH, str(error), stats, path)
        except ClipOverBudget as error:
            return self._failed(session, Reason.RECORDING_UNREADABLE, str(error), stats, path)
        except VideoError as error:
            return self._failed(session, Reason.RECORDING_UNREADABLE, str(error)[:200], stats, path)
        except Exception:
            log.exception("recorded check analysis failed")
            return self._failed(session, Reason.INTERNAL_ERROR, "analysis failed", stats, path)
        stats.update({"duration_s": round(report.duration_s, 2), "frames_analysed": report.frames})
        if not plan.schedule.length_ok(report.duration_s):
            return self._failed(session, Reason.RECORDING_LENGTH, f"{report.duration_s:.1f} s for {plan.schedule.duration_s:.1f} s", stats, path)
        signals = stricter(report.signals, session.sandbox)
        result = report.result
        late = off_schedule(report.liveness.challenges, plan.schedule) if report.liveness is not None else None
        attempts.store.audit("system", "live.ended", session.id, {"reason": "completed", "path": path.value, "connection": CheckPath.RECORDED.value})
        if late is not None:  # checked first: a clip made for another timetable also fails the engine's way
            record = liveness_record(result, session, report.pad, signals, path) or {}
            record.update(passed=False, reason=Reason.OFF_SCHEDULE.value, detail=late)
            return attempts.lifecycle.retry_or_fail(session, Reason.OFF_SCHEDULE.value, stats, liveness=record)
        if result.passed:
            pad = report.pad if report.pad is not None else PadResult.unavailable()
            return await attempts.decide(session, report.faces, result, stats, pad, signals, path, report.scenes, fingerprint=report.fingerprint)
        failure = result.reason.value if result.reason is not None else Reason.STREAM_ENDED.value
        # The record goes with the conditional move: a session redacted meanwhile gets nothing written.
        return attempts.lifecycle.retry_or_fail(session, failure, stats, liveness=liveness_record(result, session, report.pad, signals, path))

    def _replay(self, clip: bytes, plan: RecordingPlan, limits: ClipLimits, stop: threading.Event) -> ReplayReport:
        """In the recorded checks' worker: decode and analyse the clip with the session's challenges and timetable."""
        attempts, settings = self.attempts, self.attempts.settings
        return replay_video(
            io.BytesIO(clip),
            list(plan.challenges),
            attempts.landmarker_file,
            challenge_timeout_s=settings.challenge_timeout_s,
            start_timeout_s=settings.start_timeout_s,
            pad_models=attempts.pad,
            pad_policy=PadFramePolicy() if attempts.pad else None,
            prompts_at=plan.schedule.prompts_at,
            limits=limits,
            cancelled=stop,
        )

    def _failed(self, session: Session, reason: Reason, detail: str, stats: dict, path: CheckPath) -> Session:
        store = self.attempts.store
        store.audit("system", "live.ended", session.id, {"reason": reason.value, "path": path.value, "connection": CheckPath.RECORDED.value, "detail": detail})
        return self.attempts.lifecycle.retry_or_fail(session, reason.value, stats)

    def _forget_expired(self) -> None:
        now = time.time()
        for session_id in [s for s, plan in self.plans.items() if plan.expires_at < now]:
            del self.plans[session_id]
