"""Live checks: starting one for a session, how each ends, and the decision after a passed check.

Passive anti-spoofing runs through the check (see pad_scoring.py); its verdict is read when the check
ends. A confident attack verdict ends any attempt as `presentation_attack`, whatever its challenges did.

A session has at most one live attempt. Its place is reserved in the registry before the first await, so
concurrent offers cannot both start; only the registered attempt may decide the session, send it a
result or count as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..documents.outcome import document_problem
from ..errors import FlowError
from ..liveness.analyzer import SCENE_KINDS, SCENE_QUALITY, LivenessAnalyzer, PadModels
from ..liveness.engine import LivenessEngine, LivenessResult
from ..liveness.light import LightGate
from ..liveness.rates import SEND_FPS, StepRates
from ..matching.matcher import EmbeddedFace, FaceMatcher
from ..models.landmarker import LandmarkerPool, time_on_synthetic_face
from ..ratelimit import FailureLimiter
from ..reasons import ENDINGS, NOT_THE_CUSTOMERS_DOING, Reason
from ..rtc import protocol
from ..rtc.connection import LiveConnection, StepResult
from ..rtc.ice import server_rtc_configuration
from ..rtc.offer import CandidatePolicy, OfferError, check_offer
from ..sessions import CheckPath, Session, Status
from ..spoof.pad import PadResult, apply_pad
from ..spoof.replay_fingerprint import Fingerprint
from ..spoof.running import confident_attack
from ..spoof.signals import VIRTUAL_CAMERA, RiskSignal, SignalCode, StreamFacts, check_signals, strongest_first
from ..storage.database import when_available
from ..storage.handoffs import HandoffRecords
from ..storage.store import ConflictError, Store
from .admission import AFTER_HELD_RETRY_S, SOON_RETRY_S, Admission, Admit
from .cluster_line import ClusterLine
from .cputime import analysis_workers, live_cpu_s, usable_cores
from .customers import ADDRESS_FAILURE_SHARE, Customer, line_keys
from .decision_time import DecisionParts, decided
from .judgement import gallery_outcome, judge
from .lifecycle import Lifecycle, jpeg
from .live_faces import LiveFaces
from .pad_scoring import PadScoring, scoring_executor
from .registry import LiveRegistry
from .replayed_checks import reference_replay, replayed_check

log = logging.getLogger(__name__)


class LivenessStep:
    """The per-frame analysis of a live check: the liveness engine, translated into messages for the page."""

    def __init__(self, analyzer: LivenessAnalyzer, paced: bool = True, sent_by_step: bool = False) -> None:
        self.analyzer = analyzer
        self.paced = paced  # analyse only as often as the engine's current step needs
        self.sent_by_step = paced and sent_by_step  # ask the page to send each step at its rate (rates.sent_fps)
        self._last_message: dict[str, Any] | None = None

    def analyse(self, frame: Any, t: float) -> StepResult:
        verdict = self.analyzer.analyse_frame(frame, t)
        message = protocol.prompt_message(verdict)
        changed = message != self._last_message
        self._last_message = message
        engine, done = self.analyzer.engine, verdict.result is not None
        needed, sent = engine.needed_fps() if self.paced else None, engine.rates.sent_fps(engine.step()) if self.sent_by_step else None
        return StepResult(message if changed else None, done=done, needed_fps=needed, sent_fps=sent)

    def observe(self, frame: Any, t: float) -> bool:
        return self.analyzer.observe(frame, t)

    def close(self) -> None:
        self.analyzer.close()


@dataclass
class LiveAttempt:
    session_id: str
    customer: Customer  # whom the failure limiter counts this attempt against
    step: LivenessStep
    connection: LiveConnection
    camera_label: str = ""
    camera: dict | None = None  # what the browser declared its camera delivers
    offer: str = ""  # the page's SDP offer and User-Agent: which software is calling (client_not_browser)
    user_agent: str = ""
    pad: PadScoring | None = None  # None: no PAD model configured
    faces: LiveFaces | None = None  # the kept crops, embedded as they become final


STORE_WAIT_S = 600.0  # how long an ended check's outcome waits in memory for the database (a restart)


class LiveAttempts:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        lifecycle: Lifecycle,
        matcher: FaceMatcher,
        landmarker_file: Path,
        executor: Executor,
        live: LiveRegistry,
        pad: PadModels | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.lifecycle = lifecycle
        self.matcher = matcher
        self.landmarker_file = landmarker_file
        self.executor = executor  # live frame analysis only
        self.landmarkers = LandmarkerPool(landmarker_file)  # one per analysis thread, shared by the checks
        self.live = live
        self.step_rates = StepRates() if settings.live_send_rate_by_step else StepRates().with_sent({})  # each step's sent rate, or every frame
        self.pad = pad  # passive anti-spoofing; None: not configured (every result says so)
        self.pad_executor = scoring_executor(usable_cores()) if pad else None  # PAD through the checks
        self.connections: set[LiveConnection] = set()  # until each has released its peer and model
        self.failures = FailureLimiter(settings.failures_per_window, settings.failure_window_s, settings.failure_pause_s)  # sessions, browsers
        self.address_failures = FailureLimiter(settings.failures_per_window * ADDRESS_FAILURE_SHARE, settings.failure_window_s, settings.failure_pause_s)
        # The cores this process may run on (taskset, cpusets), which may be fewer than the machine's.
        self.admission = Admission(cores=usable_cores(), workers=analysis_workers(settings))
        self._estimating: asyncio.Future | None = None
        self._freed = asyncio.Event()  # set (and replaced) whenever a live check gives its place up
        self.cluster: ClusterLine | None = None  # the line shared with other instances (PostgreSQL)

    async def start(
        self,
        session: Session,
        sdp: object,
        kind: object,
        customer: Customer,
        camera_label: str = "",
        camera: dict | None = None,
        user_agent: str = "",
        held: bool = False,
    ) -> dict[str, str]:
        """Answer the page's offer; FlowError (a clean 4xx/503) when the session cannot go live now.
        `held`: an offer another instance forwarded here, for a place the shared line holds here."""
        offer = check_offer(sdp, kind, CandidatePolicy(allow_loopback=self.settings.ice_loopback))
        self.check_may_start(session, customer, camera_label)
        if session.id in self.live:
            raise FlowError("already_live", "a live check is already running for this session")
        if self.admission.cost.source == "none":
            await self.estimate_cost()
            if session.id in self.live:
                raise FlowError("already_live", "a live check is already running for this session")
        if held:  # forwarded by another instance: the place the shared line holds here, unless it lapsed
            room = self.admission.room(self.planned_fps, self.settings.max_live_sessions)
            taken = self.cluster is not None and len(self.live) < room and self.cluster.take_held(session.id)
            admit = Admit(True) if taken else Admit(False, position=1, wait_s=SOON_RETRY_S, retry_after_s=SOON_RETRY_S)
        else:
            admit = await self._ask(session, customer)
        if not admit.admitted:
            if admit.joined:
                self.store.audit("customer", "live.queued", session.id, {"position": admit.position, "wait_s": round(admit.wait_s)})
            raise FlowError("busy", "the service is busy; your place in line is kept", 503, queue=admit.to_dict())
        if admit.waited_s is not None:
            self.store.audit("customer", "live.admitted", session.id, {"waited_s": admit.waited_s})
        if admit.instance is not None and self.cluster is not None:  # the place is on another instance
            offer_body = {"sdp": sdp, "type": kind, "camera_label": camera_label, "camera": camera, "user_agent": user_agent}
            return await self.cluster.forward(admit.instance, {**offer_body, "session_id": session.id, "customer": asdict(customer)})
        self.live.reserve(session.id)  # no await since the checks above: nobody else got in meanwhile
        connection: LiveConnection | None = None
        try:
            engine = LivenessEngine(
                self.lifecycle.challenges_for(session),
                challenge_timeout_s=self.settings.challenge_timeout_s,
                start_timeout_s=self.settings.start_timeout_s,
                step_rates=self.step_rates,
                light_gate=LightGate(self.pad.thresholds.noisy_above) if self.pad and self.pad_executor else None,
            )
            scoring = PadScoring(self.pad, self.pad_executor) if self.pad and self.pad_executor else None
            analyzer = LivenessAnalyzer(
                self.landmarkers, engine, pad_policy=scoring.policy if scoring else None, running_pad=scoring.running if scoring else None
            )
            step = LivenessStep(analyzer, self.settings.live_frame_rate_cut, self.settings.live_send_rate_by_step)
            faces = LiveFaces(self.matcher, self.executor)

            def on_frame(analysis_ms: float) -> None:
                self._frame_analysed(analysis_ms, connection.stats.lag_ms())
                faces.kick(analyzer)
                if scoring is not None:
                    scoring.kick()

            async def on_end(reason: str) -> None:
                await self._ended(attempt, reason)

            connection = LiveConnection(
                step,
                self.executor,
                server_rtc_configuration(self.settings, self.lifecycle.now()),
                on_end=on_end,
                connect_timeout_s=self.settings.connect_timeout_s,
                no_frames_timeout_s=self.settings.no_frames_timeout_s,
                busy_analysis_fps=self.settings.busy_analysis_fps,
                on_frame=on_frame,
                first_sent_fps=SEND_FPS,
            )
            attempt = LiveAttempt(session.id, customer, step, connection, camera_label, camera, offer, user_agent, scoring, faces)
            self.live.register(attempt)
            self._track(connection)
            try:
                answer = await connection.answer(offer, "offer")  # an unusable offer costs no attempt
            except Exception:  # aiortc raises whatever an odd offer makes it raise: the offer is at fault
                raise OfferError("the offer could not be used") from None
            # Conditional in storage too: the stored status must still be id_uploaded.
            self.lifecycle.move(session, Status.LIVE, "customer", attempts=session.attempts + 1, failure_reason=None)
        except ConflictError:
            await self._abandon(session.id, connection)
            raise FlowError("wrong_state", "the session changed meanwhile") from None
        except BaseException:
            await self._abandon(session.id, connection)
            raise
        self.store.audit(
            "customer",
            "live.started",
            session.id,
            {"attempt": session.attempts + 1, "camera": _camera_kind(camera_label), "camera_settings": camera or {}},
        )
        return {"sdp": answer.sdp, "type": answer.type}

    async def _ask(self, session: Session, customer: Customer) -> Admit:
        """A place, or one in line. Next in line, the answer waits up to the time the page would wait
        before asking again, and takes a place that frees meanwhile: it is not left idle until the next ask."""
        keys = line_keys(session, customer)

        def ask() -> Admit:
            fps, bound = self.planned_fps, self.settings.max_live_sessions
            if self.cluster is not None:
                return self.cluster.ask(self.admission, session.id, len(self.live), fps, bound, keys)
            return self.admission.ask(session.id, len(self.live), time.monotonic(), fps, bound, keys)

        admit = ask()
        if admit.admitted or admit.retry_after_s > SOON_RETRY_S:
            return admit
        freed = self._freed
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(freed.wait(), admit.retry_after_s)
        if (self.cluster is None and not self.admission.in_line(session.id)) or session.id in self.live:
            return admit  # the page left meanwhile (its beacon): the first answer stands
        if not freed.is_set():
            return replace(admit, retry_after_s=AFTER_HELD_RETRY_S)
        again = ask()
        return again if again.admitted else replace(again, joined=admit.joined, retry_after_s=AFTER_HELD_RETRY_S)

    def _place_freed(self) -> None:
        self.wake()
        self.publish(freed=True)

    def wake(self) -> None:
        """Answers held for customers next in line ask again: a place may be free (here or, with a shared
        line, on another instance)."""
        self._freed.set()
        self._freed = asyncio.Event()

    def publish(self, freed: bool = False) -> None:
        """With a shared line: this instance's room and live checks, for the other instances' asks (and,
        when a place was `freed`, a notice that wakes their customers next in line)."""
        if self.cluster is not None:
            self.cluster.publish(self.admission, len(self.live), self.planned_fps, self.settings.max_live_sessions, freed)

    def check_may_start(self, session: Session, customer: Customer, camera_label: str = "", attempt_taken: bool = False) -> None:
        """FlowError unless the session is at the live step with an attempt left (`attempt_taken`: the
        check's attempt was counted already, as a recorded check's plan is), neither the session, the
        address nor the browser is paused for too many failures, and (with a live key) the camera is not
        named as a virtual one (a live or a recorded check alike)."""
        if session.status != Status.ID_UPLOADED:
            raise FlowError("wrong_state", f"the session is {session.status.value}")
        if session.attempts >= session.max_attempts and not attempt_taken:
            raise FlowError("no_attempts_left", "no attempts are left", 403)
        pauses = (self.failures.paused_for(customer.session), self.failures.paused_for(customer.browser), self.address_failures.paused_for(customer.address))
        pause = max(pauses)
        if pause:
            raise FlowError("too_many_failures", f"too many failed checks; try again in {int(pause // 60) + 1} minutes", 429)
        if camera_label and VIRTUAL_CAMERA.search(camera_label) and not session.sandbox:
            self.store.audit("customer", "live.refused", session.id, {"reason": "virtual_camera"})
            raise FlowError("virtual_camera", "this camera looks like a virtual camera; use the device's own camera", 403)

    def count_failure(self, session: Session, customer: Customer) -> None:
        """A failed attempt counts toward the customer's pauses unless it was not evidence of an attack."""
        if session.failure_reason and session.failure_reason not in _NOT_COUNTED:
            self.failures.record(customer.session)
            self.failures.record(customer.browser)
            self.address_failures.record(customer.address)

    async def estimate_cost(self) -> None:
        """The first per-frame cost estimate, on the built-in synthetic face (once; call it at start-up to
        spare the first customer the half second it takes)."""
        if self._estimating is None:
            self._estimating = asyncio.ensure_future(self._time_synthetic_face())
        await asyncio.shield(self._estimating)

    async def warm_up(self) -> None:
        """At the service's start, before it says it is ready: a landmarker on every analysis thread, then
        the first cost estimate. A cold service answered its first offer in 1-2.5 s (the model loaded and
        timed while the customer waited) and made the first checks' other threads load theirs mid-check."""
        workers = analysis_workers(self.settings)
        barrier = threading.Barrier(workers)

        def load_here() -> None:
            try:
                barrier.wait(timeout=30)  # every task holds its thread until all have one: one graph per thread
            except threading.BrokenBarrierError:
                pass
            self.landmarkers.landmarker()

        loop = asyncio.get_running_loop()
        started = time.monotonic()
        loaded = await asyncio.gather(*(loop.run_in_executor(self.executor, load_here) for _ in range(workers)), return_exceptions=True)
        for error in {repr(e) for e in loaded if isinstance(e, BaseException)}:
            log.warning("an analysis thread could not load its landmarker at start: %s", error)
        await self.estimate_cost()
        log.info("ready: %d landmarkers loaded and the per-frame cost estimated in %.1f s", self.landmarkers.size, time.monotonic() - started)

    @property
    def ready(self) -> bool:
        """The models are loaded and the first cost is known: a check starts without waiting for them."""
        return self.admission.cost.source != "none"

    async def _time_synthetic_face(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            # On an analysis thread's own landmarker, which this makes ready for the first check.
            self.admission.cost.estimate(await loop.run_in_executor(self.executor, time_on_synthetic_face, self.landmarkers))
        except Exception:
            log.exception("the per-frame cost could not be estimated; admitting by MAX_LIVE_SESSIONS until live frames are timed")
            self.admission.cost.source = "unmeasured"

    def _frame_analysed(self, analysis_ms: float, lag_ms: float | None) -> None:
        if self.admission.cost.frame(analysis_ms, live_cpu_s, time.monotonic(), len(self.live), lag_ms):
            self._place_freed()  # the climb opened a place: a held answer takes it

    @property
    def planned_fps(self) -> float:
        """Analysed frames a second a check is admitted at: the setting, else its steps' analysed rates on average."""
        return self.settings.live_analysis_fps or self.step_rates.planned_fps()

    def capacity(self) -> dict[str, Any]:
        """What /healthz/details reports: capacity, load, the measured cost and the rates it is planned by."""
        snapshot = self.admission.snapshot(len(self.live), time.monotonic(), self.planned_fps, self.settings.max_live_sessions)
        snapshot = {**snapshot, "step_rates": self.step_rates.with_margins()}
        return snapshot if self.cluster is None else {**snapshot, **self.cluster.view()}

    async def stop(self, session: Session, reason: str = "bye") -> None:
        """The page went away: its live check ends, its place in line is given up."""
        self.admission.leave(session.id)
        if self.cluster is not None:
            self.cluster.leave(session.id)
        attempt = self.live.get(session.id)
        if attempt is not None:
            await attempt.connection.end(reason)
        elif self.cluster is not None:
            self.cluster.end_elsewhere(session.id, reason)

    async def shutdown(self) -> None:
        connections = list(self.connections)
        await asyncio.gather(*(c.end("server_shutdown") for c in connections), return_exceptions=True)
        if connections:
            await asyncio.wait([asyncio.ensure_future(c.closed.wait()) for c in connections], timeout=10)
        await asyncio.get_running_loop().run_in_executor(self.executor, self.landmarkers.shutdown)
        if self.pad_executor is not None:
            self.pad_executor.shutdown(wait=False, cancel_futures=True)  # a frame being scored finishes on its own

    def _track(self, connection: LiveConnection) -> None:
        self.connections.add(connection)
        forget = asyncio.create_task(connection.closed.wait())
        forget.add_done_callback(lambda _: self.connections.discard(connection))

    async def _abandon(self, session_id: str, connection: LiveConnection | None) -> None:
        """Setup failed: free the place first (the attempt is not current any more), then the peer."""
        attempt = self.live.get(session_id)
        self.live.release(session_id, attempt)
        self._place_freed()
        if connection is not None:
            await connection.end("setup_failed")

    # -- how an attempt ends ----------------------------------------------------------------------

    async def _ended(self, attempt: LiveAttempt, reason: str) -> None:
        """The outcome, stored; while the database is down (a restart) it waits in memory, up to STORE_WAIT_S."""
        if not self.live.is_current(attempt):
            return  # set up but never the session's attempt, or superseded: it decides nothing
        try:
            await when_available(lambda: self._outcome(attempt, reason), STORE_WAIT_S)
        finally:
            self.live.release(attempt.session_id, attempt)
            self.admission.check_ended(attempt.connection.stats.elapsed())
            self._place_freed()

    async def _outcome(self, attempt: LiveAttempt, reason: str) -> None:
        entered = time.monotonic()
        connection = attempt.connection
        session = self.store.session(attempt.session_id)
        if session is None or session.status != Status.LIVE:
            return
        engine = attempt.step.analyzer.engine
        stats = {**connection.stats.summary(), "start_s": dict(attempt.step.analyzer.start_times)}
        # A peer that failed to connect, or the page gave up on before it did (it offers to record then).
        never_connected = reason in NEVER_CONNECTED_ENDINGS and not connection.ever_connected and connection.stats.first_frame_at is None
        connected = CheckPath.WEBRTC_RELAY if connection.relayed() else CheckPath.WEBRTC
        path = CheckPath.HANDOFF if HandoffRecords(self.store).handed_off(session.id) else connected
        self.store.audit("system", "live.ended", session.id, {"reason": reason, "path": path.value, "connection": connected.value})
        if not connection.ever_connected and connection.stats.first_frame_at is None and reason in UNCONNECTED_ENDINGS:
            # The server saw this peer fail to connect: the page may offer a recorded check now.
            self.store.audit("system", "live.unconnected", session.id, {"reason": reason})
        last = connection.stats
        started: float | None = None  # the arrival of the frame that completed the check (monotonic)
        parts = DecisionParts()
        if reason == "completed" and last.last_analysed_at is not None and last.latencies_ms:
            started = last.last_analysed_at - last.latencies_ms[-1] / 1000
            parts.mark("analysis", started, last.last_analysed_at)  # that frame's own wait and analysis
            parts.mark("to_outcome", last.last_analysed_at, entered)
        passed = reason == "completed" and engine.result is not None and engine.result.passed
        failed = not passed and reason not in SERVER_ENDINGS
        flat = attempt.step.analyzer.pad_deformation()
        before = time.monotonic()
        pad = await attempt.pad.verdict(failed, flat) if attempt.pad is not None else PadResult.unavailable()
        parts.mark("pad", before, time.monotonic())
        attacked = False
        if passed and engine.result is not None:
            result = apply_pad(engine.result, pad)
            signals = self._signals(attempt, session, result, pad)
            if result.passed:
                analyzer = attempt.step.analyzer
                before = time.monotonic()
                embedded = await attempt.faces.faces(result.frame_slots, analyzer) if attempt.faces is not None else None
                parts.mark("faces", before, time.monotonic())
                stats["decision_started_at"], stats["decision_parts"] = started, parts  # popped by decide
                moved, crops = analyzer.movement.fingerprint(), analyzer.faces_for_matching()
                session = await self.decide(session, crops, result, stats, pad, signals, path, analyzer.scene_frames(), embedded, moved)
            else:
                attacked = True
                decided(stats, started, parts)
                record = liveness_record(result, session, pad, signals, path)
                session = self.store.update_session(session.id, liveness=record)
                session = self.lifecycle.retry_or_fail(session, Reason.PRESENTATION_ATTACK.value, stats)
        else:
            result = engine.result if reason == "completed" else engine.finish(connection.stats.elapsed())
            attacked = result is not None and reason not in SERVER_ENDINGS and confident_attack(pad)
            if attacked and result is not None:
                # The customer is told nothing the challenges saw: an attack is refused as an attack.
                result = apply_pad(result, pad)
                failure = Reason.PRESENTATION_ATTACK.value
                decided(stats, started, parts)
            elif reason == "completed" and result is not None and result.reason is not None:
                failure = result.reason.value
            else:
                failure = ENDINGS.get(reason, Reason.CONNECTION_LOST).value
            scored = pad if pad.frames_scored else None  # a failed attempt's PAD figures, when there are any
            signals = self._signals(attempt, session, result, scored) if result is not None else []
            fields: dict[str, Any] = {"liveness": liveness_record(result, session, scored, signals, path)}
            if never_connected:
                # The network failed, not the customer: the attempt is given back.
                fields["attempts"] = session.attempts - 1
            session = self.store.update_session(session.id, **fields)
            session = self.lifecycle.retry_or_fail(session, failure, stats)
        if attacked or (reason not in NOT_THE_CUSTOMERS_DOING and not never_connected):
            self.count_failure(session, attempt.customer)
        log.info(
            "live check %s ended (%s): %d frames received at %.1f fps, %d analysed at %.1f fps, "
            "%d dropped, latency p50 %s ms p95 %s ms; status %s",
            session.id, reason, stats["frames_received"], stats["received_fps"], stats["frames_analysed"],
            stats["analysed_fps"], stats["frames_dropped"], stats["latency_ms"]["p50"], stats["latency_ms"]["p95"],
            session.status.value,
        )
        # The outcome is stored: the session is free for a next attempt while this peer closes.
        self.live.release(attempt.session_id, attempt)
        self._place_freed()
        connection.send(protocol.result_message(session.status.value))
        await asyncio.sleep(0.05)  # let the data channel flush the result before the peer closes

    def _signals(self, attempt: LiveAttempt, session: Session, result: LivenessResult, pad: PadResult | None) -> list[RiskSignal]:
        stats, analyzer = attempt.connection.stats, attempt.step.analyzer
        facts = StreamFacts(
            capture_s=list(stats.capture_s),
            arrival_s=list(stats.arrival_s),
            sizes=list(stats.sizes),
            asked_fps=list(stats.asked_fps),
            repeated_frames=analyzer.repeated_frames,
            analysed_pairs=analyzer.analysed_pairs,
            declared=attempt.camera,
            camera_label=attempt.camera_label,
            reactions=[(c.type.value, c.reaction_s) for c in result.challenges],
            offer=attempt.offer,
            user_agent=attempt.user_agent,
            continuity=analyzer.continuity.steps,
            challenge_spans=result.challenge_spans(),
            reaction_windows=result.challenge_spans(to_onset=True),
            rigidity=analyzer.rigidity.result(),
        )
        return check_signals(facts, pad, self.pad.thresholds if self.pad else None)

    async def decide(
        self,
        session: Session,
        crops: list[np.ndarray],
        result: LivenessResult,
        stats: dict,
        pad: PadResult,
        signals: list[RiskSignal],
        path: CheckPath,
        scenes: list[np.ndarray] | None = None,
        embedded: list[EmbeddedFace] | None = None,
        fingerprint: Fingerprint | None = None,
    ) -> Session:
        """Match the passed check's faces against the reference and decide the session. `stats` may
        hold `decision_started_at` (monotonic), from when the decision's time is measured. `scenes`
        (whole frames, reduced) are kept only when PAD or a risk signal sends the session to review.
        `embedded`: the crops already embedded during the check (live_faces.py), else they are here;
        `fingerprint`: the check's movement, compared with the merchant's earlier checks, then kept."""
        started, parts = stats.pop("decision_started_at", None), stats.pop("decision_parts", None)
        record = liveness_record(result, session, pad, signals, path)
        session = self.lifecycle.move(session, Status.PROCESSING, "system", liveness=record)
        reference = self.store.evidence(session.id, "reference_embedding")
        if reference is None:
            return self.lifecycle.move(session, Status.FAILED, "system", failure_reason=Reason.REFERENCE_MISSING.value, live_stats=stats)
        loop = asyncio.get_running_loop()
        live_faces = embedded if embedded is not None else await loop.run_in_executor(self.executor, self.matcher.embed_live, crops)
        swapped = bool(live_faces) and not self.matcher.same_person_throughout(live_faces)
        if not live_faces or swapped:
            decided(stats, started, parts)
            return self.lifecycle.retry_or_fail(session, (Reason.FACE_SWAP if swapped else Reason.NO_FACE).value, stats)
        reference_embedding = np.frombuffer(reference, dtype=np.float32)
        match = self.matcher.compare(reference_embedding, [f.embedding for f in live_faces])
        for index, face in enumerate(live_faces[:3]):
            self.store.put_evidence(session.id, f"live_face_{index}", jpeg(face.aligned))
        found = reference_replay(self.store, session, reference_embedding, live_faces)
        found += await replayed_check(self.store, self.executor, session, fingerprint, parts)
        if found:
            signals = strongest_first([*signals, *found])
            record["signals"] = [s.to_dict() for s in signals]
            session = self.store.update_session(session.id, liveness=record)
        mean = np.mean(np.stack([f.embedding for f in live_faces]), axis=0).astype(np.float32)
        self.store.put_evidence(session.id, "live_embedding", mean.tobytes())
        waived = frozenset({SignalCode.PAD_UNAVAILABLE}) if self.settings.approve_without_anti_spoofing else frozenset()
        verdict = judge(match.decision, signals, session.sandbox, waived)
        if verdict.attacks:  # an injection signal on a live key (PAD's own attack verdict never gets here)
            decided(stats, started, parts)
            record.update(passed=False, reason=Reason.PRESENTATION_ATTACK.value, detail=", ".join(verdict.attacks))
            session = self.store.update_session(session.id, liveness=record)
            return self.lifecycle.retry_or_fail(session, Reason.PRESENTATION_ATTACK.value, stats)
        target, failure_reason = verdict.status, verdict.failure_reason
        if verdict.review_because:
            record["review_because"] = list(verdict.review_because)
        problem = document_problem(session.document, session.expected)
        if problem is not None and target != Status.REJECTED:  # the face decides first; then the document
            target, failure_reason = Status(self.lifecycle.settings.document_outcome), problem.value
        gallery = self.lifecycle.gallery
        if gallery is not None and target != Status.REJECTED:  # then the merchant's gallery (1:N)
            target, failure_reason = gallery_outcome(gallery.check(session, mean), record, target, failure_reason)
        if target == Status.REVIEW and verdict.review_because:
            for kind, frame in zip(SCENE_KINDS, scenes or [], strict=False):
                self.store.put_evidence(session.id, kind, jpeg(frame, SCENE_QUALITY))
        decided(stats, started, parts)  # the verdict is known; it is stored (and only then told) next
        # The record goes with the conditional move: a session redacted meanwhile gets nothing written.
        session = self.lifecycle.move(session, target, "system", match=match.to_dict(), live_stats=stats, failure_reason=failure_reason, liveness=record)
        if gallery is not None:
            gallery.enrol(session, mean)
        return session


# Endings the service caused (not the customer, not the camera): a PAD verdict does not override them.
SERVER_ENDINGS = frozenset(ENDINGS) - {"bye"}

# Endings of a peer that never connected after which the attempt is given back (a silent page's
# connect_timeout still costs one).
NEVER_CONNECTED_ENDINGS = frozenset({"bye", "connection_failed"})
# Endings of a peer that never connected after which a recorded check may be offered (see flow/recorded.py).
UNCONNECTED_ENDINGS = NEVER_CONNECTED_ENDINGS | {"connect_timeout"}

# Failures that are not evidence of an attack on this customer's side.
_NOT_COUNTED = frozenset({Reason.ABANDONED.value, Reason.INTERRUPTED.value, Reason.INTERNAL_ERROR.value, Reason.REDACTED.value, Reason.REFERENCE_MISSING.value})


def liveness_record(
    result: LivenessResult | None, session: Session, pad: PadResult | None, signals: list[RiskSignal], path: CheckPath
) -> dict[str, Any] | None:
    if result is None:
        return None
    data = result.to_dict()
    data["path"] = path.value
    data["attempt"] = session.attempts
    data["pad"] = pad.to_dict() if pad is not None else None
    data["signals"] = [s.to_dict() for s in signals]
    return data


def _camera_kind(label: str) -> str:
    return "virtual" if label and VIRTUAL_CAMERA.search(label) else ("unlabelled" if not label else "device")
