"""Recorded checks: the fallback when a peer connection cannot be made (or the browser has no WebRTC).

The server issues the random challenges, a timetable (see liveness/schedule.py) and a one-time nonce;
the page shows the prompts on that timetable while MediaRecorder records, then uploads the clip with the
nonce. The clip is decoded and analysed in a worker thread under size, format and length limits, by the
same engine (asking nothing before its prompt), the same passive anti-spoofing and risk signals, then
decided like a live check. A nonce is used once and only for a short time: a clip made for another
plan, or sent twice, is refused; one that does not follow the timetable fails its attempt.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import logging
import os
import time
from dataclasses import dataclass

from ..errors import FlowError
from ..liveness.challenges import Challenge
from ..liveness.replay import ClipLimits, ClipTooLong, ReplayReport, VideoError, replay_video
from ..liveness.schedule import RecordingSchedule, off_schedule
from ..reasons import Reason
from ..sessions import CheckPath, Session, Status
from ..spoof.pad import PadFramePolicy, PadResult
from ..storage.handoffs import HandoffRecords
from ..storage.store import ConflictError
from .attempts import LiveAttempts, liveness_record
from .tokens import new_token, token_hash

log = logging.getLogger(__name__)

UPLOAD_GRACE_S = 60.0  # after the clip's end, for stopping the recorder and uploading
MAX_EXTRA_S = 10.0  # decoded at most this far beyond the timetable, then refused as too long


@dataclass(frozen=True)
class RecordingPlan:
    session_id: str
    nonce_hash: str
    challenges: tuple[Challenge, ...]
    schedule: RecordingSchedule
    expires_at: float

    def to_page(self, nonce: str) -> dict:
        return {"nonce": nonce, "challenges": [c.value for c in self.challenges], **self.schedule.to_dict()}


class RecordedChecks:
    def __init__(self, attempts: LiveAttempts) -> None:
        self.attempts = attempts
        self.plans: dict[str, RecordingPlan] = {}  # one per session; a new plan makes the old nonce stale
        # A clip is analysed as fast as a worker can (not at a live rate): at most half the cores do it
        # at once, so uploads arriving together wait their turn instead of starving the live checks.
        self._analysing = asyncio.Semaphore(max(1, len(os.sched_getaffinity(0)) // 2))

    def plan(self, session: Session, customer: str, camera_label: str = "") -> dict:
        """A plan for the page: challenges, timetable and the nonce the clip must come back with."""
        self.attempts.check_may_start(session, customer, camera_label)
        if session.id in self.attempts.live:
            raise FlowError("already_live", "a check is already running for this session")
        self._forget_expired()
        challenges = tuple(self.attempts.lifecycle.challenges_for(session))
        schedule = RecordingSchedule(len(challenges))
        nonce = new_token()
        expires_at = time.time() + schedule.duration_s + UPLOAD_GRACE_S
        self.plans[session.id] = RecordingPlan(session.id, token_hash(nonce), challenges, schedule, expires_at)
        self.attempts.store.audit("customer", "recorded.planned", session.id, {"challenges": len(challenges)})
        return self.plans[session.id].to_page(nonce)

    async def submit(self, session: Session, nonce: str, clip: bytes, customer: str) -> Session:
        """Analyse the clip made for the session's plan and record the attempt's outcome."""
        plan = self.plans.get(session.id)
        if plan is None or not hmac.compare_digest(plan.nonce_hash, token_hash(nonce)):
            self.attempts.store.audit("customer", "recorded.refused", session.id, {"reason": "unknown_nonce"})
            raise FlowError("recording_stale", "this recording was not made for the current check; record again")
        del self.plans[session.id]  # used once, whatever comes of it
        if plan.expires_at < time.time():
            self.attempts.store.audit("customer", "recorded.refused", session.id, {"reason": "expired_nonce"})
            raise FlowError("recording_stale", "this recording's time has passed; record again")
        self.attempts.check_may_start(session, customer)
        live = self.attempts.live
        if not live.reserve(session.id):
            raise FlowError("already_live", "a check is already running for this session")
        try:
            session = self.attempts.lifecycle.move(session, Status.LIVE, "customer", attempts=session.attempts + 1, failure_reason=None)
            self.attempts.store.audit("customer", "live.started", session.id, {"attempt": session.attempts, "path": CheckPath.RECORDED.value})
            session = await self._analyse(session, plan, clip)
        except ConflictError:  # the session changed meanwhile (the merchant erased it)
            raise FlowError("wrong_state", "the session changed meanwhile") from None
        finally:
            live.release(session.id)
        self.attempts.count_failure(session, customer)
        return session

    async def _analyse(self, session: Session, plan: RecordingPlan, clip: bytes) -> Session:
        attempts, settings = self.attempts, self.attempts.settings
        path = CheckPath.HANDOFF if HandoffRecords(attempts.store).handed_off(session.id) else CheckPath.RECORDED
        limits = ClipLimits(max_seconds=plan.schedule.duration_s + MAX_EXTRA_S, max_pixels=settings.max_image_pixels)
        stats: dict = {"clip_bytes": len(clip)}
        loop = asyncio.get_running_loop()
        try:
            async with self._analysing:
                report = await loop.run_in_executor(attempts.executor, self._replay, clip, plan, limits)
        except ClipTooLong:
            return self._failed(session, Reason.RECORDING_LENGTH, "too long", stats, path)
        except VideoError as error:
            return self._failed(session, Reason.RECORDING_UNREADABLE, str(error)[:200], stats, path)
        except Exception:
            log.exception("recorded check analysis failed")
            return self._failed(session, Reason.INTERNAL_ERROR, "analysis failed", stats, path)
        stats.update({"duration_s": round(report.duration_s, 2), "frames_analysed": report.frames})
        if not plan.schedule.length_ok(report.duration_s):
            return self._failed(session, Reason.RECORDING_LENGTH, f"{report.duration_s:.1f} s for {plan.schedule.duration_s:.1f} s", stats, path)
        signals = list(report.signals)
        result = report.result
        late = off_schedule(report.liveness.challenges, plan.schedule) if report.liveness is not None else None
        attempts.store.audit("system", "live.ended", session.id, {"reason": "completed", "path": path.value, "connection": CheckPath.RECORDED.value})
        if late is not None:  # checked first: a clip made for another timetable also fails the engine's way
            record = liveness_record(result, session, report.pad, signals, path) or {}
            record.update(passed=False, reason=Reason.OFF_SCHEDULE.value, detail=late)
            session = attempts.store.update_session(session.id, liveness=record)
            return attempts.lifecycle.retry_or_fail(session, Reason.OFF_SCHEDULE.value, stats)
        if result.passed:
            pad = report.pad if report.pad is not None else PadResult.unavailable()
            return await attempts.decide(session, report.faces, result, stats, pad, signals, path, report.scenes)
        session = attempts.store.update_session(session.id, liveness=liveness_record(result, session, report.pad, signals, path))
        failure = result.reason.value if result.reason is not None else Reason.STREAM_ENDED.value
        return attempts.lifecycle.retry_or_fail(session, failure, stats)

    def _replay(self, clip: bytes, plan: RecordingPlan, limits: ClipLimits) -> ReplayReport:
        """In a worker thread: decode and analyse the clip with the session's challenges and timetable."""
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
        )

    def _failed(self, session: Session, reason: Reason, detail: str, stats: dict, path: CheckPath) -> Session:
        store = self.attempts.store
        store.audit("system", "live.ended", session.id, {"reason": reason.value, "path": path.value, "connection": CheckPath.RECORDED.value, "detail": detail})
        return self.attempts.lifecycle.retry_or_fail(session, reason.value, stats)

    def _forget_expired(self) -> None:
        now = time.time()
        for session_id in [s for s, plan in self.plans.items() if plan.expires_at < now]:
            del self.plans[session_id]
