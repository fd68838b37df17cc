"""The verification flow: what happens to a session, whoever asks (merchant API, hosted pages, the clock).

Views call these methods and render the outcome; they never change a session themselves. Every status
change goes through `_move`, which records it in the audit log and queues the webhook of a final state.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import time
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import webhooks
from .config import Settings
from .liveness.analyzer import LivenessAnalyzer
from .liveness.challenges import Challenge, parse_challenges, random_challenges
from .liveness.engine import LivenessEngine, LivenessResult, Reason, Verdict
from .matching.faces import FaceError
from .matching.images import decode_image
from .matching.matcher import Decision, FaceMatcher
from .models.loader import new_landmarker
from .ratelimit import FailureLimiter
from .rtc.connection import LiveConnection, StepResult
from .rtc.ice import rtc_configuration
from .sessions import FINAL, Session, Status
from .storage.store import ConflictError, Store

log = logging.getLogger(__name__)

TOKEN_BYTES = 32
LIVE_GRACE_S = 300.0  # a check under way may outlive its link by this much
VIRTUAL_CAMERA = re.compile(r"\bobs\b|manycam|v4l2loopback|virtual|snap camera|xsplit|vcam|droidcam|fake", re.IGNORECASE)


class FlowError(Exception):
    """A request the flow refuses; `code` is stable, `status` the HTTP status to answer with."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Why a live attempt ended without a verdict -> the failure reason recorded for it.
ENDINGS = {
    "bye": "abandoned",
    "redacted": "redacted",
    "server_shutdown": "interrupted",
    "analysis_error": "internal_error",
    "setup_failed": "connection_lost",
}


@dataclass(frozen=True)
class LinkOpening:
    session: Session | None
    browser_key: str | None  # set when this opening claimed the link for a browser
    problem: str | None  # unknown, expired, used


class LivenessStep:
    """The per-frame analysis of the live flow: liveness engine, translated into messages for the page."""

    def __init__(self, analyzer: LivenessAnalyzer) -> None:
        self.analyzer = analyzer
        self._last_message: dict[str, Any] | None = None

    def analyse(self, frame: Any, t: float) -> StepResult:
        verdict = self.analyzer.analyse_frame(frame, t)
        message = prompt_message(verdict)
        changed = message != self._last_message
        self._last_message = message
        return StepResult(message if changed else None, done=verdict.result is not None)

    def close(self) -> None:
        self.analyzer.close()


def prompt_message(verdict: Verdict) -> dict[str, Any]:
    prompt = verdict.prompt
    return {
        "type": "prompt",
        "phase": prompt.phase.value,
        "challenge": prompt.challenge.value if prompt.challenge else None,
        "step": prompt.step,
        "total": prompt.total,
        "hint": prompt.hint.value if prompt.hint else None,
    }


@dataclass
class LiveAttempt:
    session_id: str
    client: str
    step: LivenessStep
    connection: LiveConnection


class Verifier:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        matcher: FaceMatcher,
        landmarker_file: Path,
        executor: Executor,
        outbox: webhooks.Outbox | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.matcher = matcher
        self.landmarker_file = landmarker_file
        self.executor = executor
        self.outbox = outbox
        self.rtc_config = rtc_configuration(settings.ice_servers)
        self.live: dict[str, LiveAttempt] = {}
        self.connections: set[LiveConnection] = set()  # until each has released its peer and model
        self.failures = FailureLimiter(settings.failures_per_window, settings.failure_window_s, settings.failure_pause_s)

    # -- merchant side ----------------------------------------------------------------------------

    def create_session(
        self,
        api_key_id: int,
        sandbox: bool,
        reference_id: str | None,
        base_url: str,
        actor: str = "api",
        merchant_name: str | None = None,
        callback_url: str | None = None,
        redirect_url: str | None = None,
        locale: str | None = None,
        challenge_count: int | None = None,
        fixed_challenges: list[str] | None = None,
        ttl_s: int | None = None,
    ) -> tuple[Session, str]:
        if fixed_challenges is not None:
            if not sandbox:
                raise FlowError("fixed_challenges_forbidden", "only sandbox keys may fix the challenges", 403)
            fixed_challenges = [c.value for c in parse_challenges(fixed_challenges)]
        now = time.time()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        session = Session(
            id="ses_" + secrets.token_hex(12),
            api_key_id=api_key_id,
            sandbox=sandbox,
            reference_id=reference_id,
            status=Status.CREATED,
            created_at=now,
            updated_at=now,
            expires_at=now + (ttl_s or self.settings.session_ttl_s),
            challenge_count=len(fixed_challenges) if fixed_challenges else (challenge_count or self.settings.challenge_count),
            max_attempts=self.settings.max_attempts,
            locale=locale,
            merchant_name=merchant_name,
            callback_url=callback_url,
            redirect_url=redirect_url,
            fixed_challenges=fixed_challenges,
        )
        self.store.insert_session(session, token_hash(token))
        self.store.audit(actor, "session.created", session.id, {"sandbox": sandbox})
        return session, f"{base_url.rstrip('/')}/v/{token}"

    async def set_reference(self, session: Session, data: bytes, content_type: str | None, source: str, actor: str) -> Session:
        """Check an ID photo and keep only its aligned face and embedding (encrypted); never the photo."""
        allowed = {Status.CREATED, Status.CONSENTED, Status.ID_UPLOADED}
        if session.status not in allowed:
            raise FlowError("wrong_state", f"the session is {session.status.value}; the ID photo can no longer change")
        loop = asyncio.get_running_loop()
        face = await loop.run_in_executor(self.executor, self._reference_face, data, content_type)
        self.store.put_evidence(session.id, "reference_face", _jpeg(face.aligned))
        self.store.put_evidence(session.id, "reference_embedding", face.embedding.astype(np.float32).tobytes())
        session = self.store.update_session(session.id, has_reference=True, reference_source=source)
        self.store.audit(actor, "reference.stored", session.id, {"source": source, "quality": {k: round(v, 1) for k, v in face.quality.items()}})
        if session.status == Status.CONSENTED:
            session = self._move(session, Status.ID_UPLOADED, actor)
        return session

    def _reference_face(self, data: bytes, content_type: str | None):
        image = decode_image(data, self.settings.max_upload_bytes, self.settings.max_image_pixels, content_type)
        return self.matcher.embed_photo(image)

    async def redact(self, session: Session, actor: str) -> Session:
        """Erase evidence and biometric data now; keep a tombstone with the outcome and timestamps."""
        attempt = self.live.get(session.id)
        if attempt is not None:
            await attempt.connection.end("redacted")
            session = self.store.session(session.id) or session
        if not session.status.is_final:
            session = self._move(session, Status.FAILED, actor, failure_reason="redacted", notify=False)
        first_time, callback_url = session.redacted_at is None, session.callback_url
        self.store.delete_evidence(session.id)
        self.store.scrub_webhook_events(session.id)
        session = self.store.update_session(
            session.id,
            redacted_at=session.redacted_at or time.time(),
            reference_id=None,
            callback_url=None,
            redirect_url=None,
            has_reference=False,
            liveness=None,
            match=None,
            live_stats=None,
        )
        self.store.audit(actor, "session.redacted", session.id)
        if first_time and callback_url:
            # Confirms the erasure to the merchant, like every final state.
            if webhooks.enqueue(self.store, replace(session, callback_url=callback_url), "session.redacted") and self.outbox:
                self.outbox.wake()
        return session

    # -- customer side ----------------------------------------------------------------------------

    def open_link(self, token: str, browser_key: str | None) -> LinkOpening:
        """A hosted-page link works once: it binds the session to the browser that opens it first."""
        session = self.store.session_by_token_hash(token_hash(token)) if len(token) < 200 else None
        if session is None or session.redacted_at:
            return LinkOpening(None, None, "unknown")
        if session.token_used_at is not None:
            bound = self.session_for_browser(browser_key) if browser_key else None
            same_browser = bound is not None and bound.id == session.id
            return LinkOpening(session, None, None if same_browser and not session.status.is_final else "used")
        if self.expire_if_due(session):
            return LinkOpening(session, None, "expired")
        new_key = secrets.token_urlsafe(32)
        if not self.store.claim_token(session.id, token_hash(new_key)):
            return LinkOpening(session, None, "used")
        self.store.audit("customer", "link.opened", session.id)
        return LinkOpening(session, new_key, None)

    def session_for_browser(self, browser_key: str) -> Session | None:
        return self.store.session_by_browser_key_hash(token_hash(browser_key))

    def record_consent(self, session: Session, locale: str, text: str, version: str) -> Session:
        if session.status != Status.CREATED:
            return session
        consent = {
            "version": version,
            "locale": locale,
            "text": text,
            "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "at": time.time(),
        }
        session = self._move(session, Status.CONSENTED, "customer", consent=consent)
        if session.has_reference:
            session = self._move(session, Status.ID_UPLOADED, "customer")
        return session

    def challenges_for(self, session: Session) -> list[Challenge]:
        if session.sandbox and session.fixed_challenges:
            return parse_challenges(session.fixed_challenges)
        return random_challenges(session.challenge_count)

    async def start_live(
        self, session: Session, sdp: str, kind: str, client: str, camera_label: str = "", camera: dict | None = None
    ) -> dict[str, str]:
        if session.status != Status.ID_UPLOADED:
            raise FlowError("wrong_state", f"the session is {session.status.value}")
        if session.id in self.live:
            raise FlowError("already_live", "a live check is already running for this session")
        if session.attempts >= session.max_attempts:
            raise FlowError("no_attempts_left", "no attempts are left", 403)
        pause = self.failures.paused_for(client)
        if pause:
            raise FlowError("too_many_failures", f"too many failed checks; try again in {int(pause // 60) + 1} minutes", 429)
        if len(self.live) >= self.settings.max_live_sessions:
            raise FlowError("busy", "the service is busy; try again in a minute", 503)
        if camera_label and VIRTUAL_CAMERA.search(camera_label) and not session.sandbox:
            self.store.audit("customer", "live.refused", session.id, {"reason": "virtual_camera"})
            raise FlowError("virtual_camera", "this camera looks like a virtual camera; use the device's own camera", 403)
        engine = LivenessEngine(
            self.challenges_for(session),
            challenge_timeout_s=self.settings.challenge_timeout_s,
            start_timeout_s=self.settings.start_timeout_s,
        )
        loop = asyncio.get_running_loop()
        landmarker = await loop.run_in_executor(self.executor, new_landmarker, self.landmarker_file)
        step = LivenessStep(LivenessAnalyzer(landmarker, engine))

        async def on_end(reason: str) -> None:
            await self._live_ended(attempt, reason)

        connection = LiveConnection(
            step,
            self.executor,
            self.rtc_config,
            on_end=on_end,
            connect_timeout_s=self.settings.connect_timeout_s,
            no_frames_timeout_s=self.settings.no_frames_timeout_s,
            busy_analysis_fps=self.settings.busy_analysis_fps,
        )
        attempt = LiveAttempt(session.id, client, step, connection)
        self.live[session.id] = attempt
        self.connections.add(connection)
        forget = asyncio.create_task(connection.closed.wait())
        forget.add_done_callback(lambda _: self.connections.discard(connection))
        try:
            answer = await connection.answer(sdp, kind)  # an unusable offer costs no attempt
            self._move(session, Status.LIVE, "customer", attempts=session.attempts + 1, failure_reason=None)
        except Exception:
            await connection.end("setup_failed")
            self.live.pop(session.id, None)
            raise
        self.store.audit(
            "customer",
            "live.started",
            session.id,
            {"attempt": session.attempts + 1, "camera": _camera_kind(camera_label), "camera_settings": camera or {}},
        )
        return {"sdp": answer.sdp, "type": answer.type}

    async def stop_live(self, session: Session, reason: str = "bye") -> None:
        attempt = self.live.get(session.id)
        if attempt is not None:
            await attempt.connection.end(reason)

    async def _live_ended(self, attempt: "LiveAttempt", reason: str) -> None:
        connection = attempt.connection
        try:
            session = self.store.session(attempt.session_id)
            if session is None or session.status != Status.LIVE:
                return
            engine = attempt.step.analyzer.engine
            stats = connection.stats.summary()
            if reason == "completed" and engine.result is not None and engine.result.passed:
                session = await self._decide(session, attempt.step.analyzer, engine.result, connection, stats)
            else:
                result = engine.result if reason == "completed" else engine.finish(connection.stats.elapsed())
                failure = result.reason.value if reason == "completed" and result.reason else ENDINGS.get(reason, "connection_lost")
                if reason not in ("server_shutdown", "redacted"):  # not the customer's doing
                    self.failures.record(attempt.client)
                session = self.store.update_session(session.id, liveness=_liveness_record(result, session))
                session = self._retry_or_fail(session, failure, stats)
            log.info(
                "live check %s ended (%s): %d frames received at %.1f fps, %d analysed at %.1f fps, "
                "%d dropped, latency p50 %s ms p95 %s ms; status %s",
                session.id, reason, stats["frames_received"], stats["received_fps"], stats["frames_analysed"],
                stats["analysed_fps"], stats["frames_dropped"], stats["latency_ms"]["p50"], stats["latency_ms"]["p95"],
                session.status.value,
            )
            # The outcome is stored: the session is free for a next attempt while this peer closes.
            self.live.pop(attempt.session_id, None)
            connection.send({"type": "result", "status": session.status.value, "url": "/verify/result"})
            await asyncio.sleep(0.05)  # let the data channel flush the result before the peer closes
        finally:
            if self.live.get(attempt.session_id) is attempt:
                del self.live[attempt.session_id]

    async def _decide(self, session: Session, analyzer: LivenessAnalyzer, result: LivenessResult, connection: LiveConnection, stats: dict) -> Session:
        session = self._move(session, Status.PROCESSING, "system", liveness=_liveness_record(result, session))
        reference = self.store.evidence(session.id, "reference_embedding")
        if reference is None:
            return self._move(session, Status.FAILED, "system", failure_reason="reference_missing", live_stats=stats)
        loop = asyncio.get_running_loop()
        crops = analyzer.faces_for_matching()
        live_faces = await loop.run_in_executor(self.executor, self.matcher.embed_live, crops)
        decided_at = time.monotonic()
        last = connection.stats
        if last.last_analysed_at is not None and last.latencies_ms:
            stats["decision_ms"] = round((decided_at - (last.last_analysed_at - last.latencies_ms[-1] / 1000)) * 1000, 1)
        if not live_faces:
            return self._retry_or_fail(session, "no_face", stats)
        if not self.matcher.same_person_throughout(live_faces):
            return self._retry_or_fail(session, Reason.FACE_SWAP.value, stats)
        reference_embedding = np.frombuffer(reference, dtype=np.float32)
        match = self.matcher.compare(reference_embedding, [f.embedding for f in live_faces])
        for index, face in enumerate(live_faces[:3]):
            self.store.put_evidence(session.id, f"live_face_{index}", _jpeg(face.aligned))
        mean = np.mean(np.stack([f.embedding for f in live_faces]), axis=0).astype(np.float32)
        self.store.put_evidence(session.id, "live_embedding", mean.tobytes())
        target = {Decision.MATCH: Status.APPROVED, Decision.REVIEW: Status.REVIEW, Decision.NO_MATCH: Status.REJECTED}[match.decision]
        return self._move(
            session,
            target,
            "system",
            match=match.to_dict(),
            live_stats=stats,
            failure_reason="face_mismatch" if target == Status.REJECTED else None,
        )

    def _retry_or_fail(self, session: Session, reason: str, stats: dict | None) -> Session:
        if session.attempts < session.max_attempts:
            return self._move(session, Status.ID_UPLOADED, "system", failure_reason=reason, live_stats=stats)
        return self._move(session, Status.FAILED, "system", failure_reason=reason, live_stats=stats)

    # -- the clock and restarts -------------------------------------------------------------------

    def expire_if_due(self, session: Session) -> bool:
        if session.status.is_final or session.expires_at > time.time():
            return session.status == Status.EXPIRED
        if session.status in (Status.LIVE, Status.PROCESSING):
            return False
        try:
            self._move(session, Status.EXPIRED, "system")
        except ConflictError:
            pass
        return True

    def expire_due(self) -> int:
        count = 0
        for session in self.store.sessions_to_expire(time.time(), LIVE_GRACE_S):
            if session.id in self.live:
                continue
            try:
                self._move(session, Status.EXPIRED, "system")
                count += 1
            except ConflictError:
                pass
        return count

    def recover_interrupted(self) -> int:
        """After a restart: checks that were under way can never finish; give the attempt back or fail."""
        count = 0
        for session in self.store.sessions_with_status([Status.LIVE, Status.PROCESSING]):
            if session.id in self.live:
                continue
            self._retry_or_fail(session, "interrupted", None)
            count += 1
        return count

    async def shutdown(self) -> None:
        connections = list(self.connections)
        await asyncio.gather(*(c.end("server_shutdown") for c in connections), return_exceptions=True)
        if connections:
            await asyncio.wait([asyncio.ensure_future(c.closed.wait()) for c in connections], timeout=10)

    # -- the one place a status changes -----------------------------------------------------------

    def _move(self, session: Session, target: Status, actor: str, notify: bool = True, **fields: Any) -> Session:
        moved = self.store.move_session(session.id, session.status, target, **fields)
        detail = {"from": session.status.value}
        if moved.failure_reason and target in (Status.FAILED, Status.ID_UPLOADED, Status.REJECTED):
            detail["reason"] = moved.failure_reason
        self.store.audit(actor, f"status.{target.value}", session.id, detail)
        if notify and target in FINAL:
            if webhooks.enqueue(self.store, moved, f"session.{target.value}") and self.outbox is not None:
                self.outbox.wake()
        return moved


def _liveness_record(result: LivenessResult | None, session: Session) -> dict[str, Any] | None:
    if result is None:
        return None
    data = result.to_dict()
    data["attempt"] = session.attempts
    return data


def _camera_kind(label: str) -> str:
    return "virtual" if label and VIRTUAL_CAMERA.search(label) else ("unlabelled" if not label else "device")


def _jpeg(bgr: np.ndarray) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise FaceError("unreadable_image", "could not encode the face")
    return encoded.tobytes()
