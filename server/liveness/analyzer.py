"""One stream's liveness analysis: frame -> landmarks -> signals -> engine verdict, keeping face crops.

Blocking (it runs the landmarker); the live flow calls it from a worker thread, the replay tool directly.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from ..models.detector import FaceDetector
from ..models.files import ModelFileError
from ..models.landmarker import FaceLandmarker, LandmarkerPool
from ..models.pad import PadEnsemble, landmark_box
from ..spoof.continuity import ContinuityTracker
from ..spoof.flatness import FlatnessTracker, deformation_for_rule, shape_of
from ..spoof.pad import PadFramePolicy, PadResult, PadThresholds, SpreadSample
from ..spoof.replay_fingerprint import FingerprintRecorder
from ..spoof.running import RunningPad
from ..spoof.signals import frame_fingerprint
from ..spoof.texture_rigidity import RigidityTracker
from . import change_watch, rates
from .change_watch import ChangeWatch
from .engine import LivenessEngine, Phase, Verdict
from .light import Light
from .signals import FrameSignals, frame_signals

log = logging.getLogger(__name__)

# Frames are analysed at most this large (long side). MediaPipe works on 256 px crops internally, so
# larger frames only cost conversion time; the kept face crops stay well above the 112 px ArcFace input.
MAX_ANALYSIS_SIDE = 640
CROP_MARGIN = 0.6  # kept face crops extend this many face-widths beyond the landmarks on each side
# Whole frames kept at this size (long side) for a reviewer to see the surroundings (a screen's bezel, a
# hand holding a print); stored only when the check goes to review because of PAD or a risk signal.
SCENE_SIDE = 320
SCENE_FRAMES = 4
SCENE_GAP_S = 0.15  # doubles as the kept frames are thinned (a SpreadSample): they stay spread over the check
SCENE_QUALITY = 80  # JPEG
SCENE_KINDS = tuple(f"scene_{index}" for index in range(SCENE_FRAMES))  # their evidence kinds


def frame_due(t: float, last_t: float | None, fps: float | None) -> bool:
    """Whether a frame at t (seconds) is worth analysing when the last analysed one was at last_t and the
    step needs fps frames a second (0 or None: every frame). A little early is on time: cameras jitter."""
    return last_t is None or not fps or t - last_t >= rates.ON_TIME / fps


@dataclass
class FrameTimings:
    convert_ms: list[float] = field(default_factory=list)
    landmarks_ms: list[float] = field(default_factory=list)
    rest_ms: list[float] = field(default_factory=list)


def analysis_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, MAX_ANALYSIS_SIDE / max(width, height))
    # Even sizes keep the video scaler on its fast path.
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def frame_to_rgb(frame, reformatter=None) -> np.ndarray:
    """The RGB array of an av.VideoFrame, scaled to the analysis size in one pass.

    A stream passes its own `av.video.reformatter.VideoReformatter`, which keeps the scaler between
    frames: `frame.reformat` builds a new one for every frame object, which cost more than the
    conversion itself (0.16 ms a frame idle, more under load: its tables are allocated and freed each time).
    """
    width, height = analysis_size(frame.width, frame.height)
    # One thread: the service's parallelism is its streams; swscale's own slice threads (one set per
    # scaler, as many as cores) only add wake-ups. The pixels are the same.
    if reformatter is None:
        return frame.reformat(width=width, height=height, format="rgb24", threads=1).to_ndarray()
    return reformatter.reformat(frame, width=width, height=height, format="rgb24", threads=1).to_ndarray()


@dataclass
class PadModels:
    """What scoring the kept frames needs: the face detector (for the box the PAD models were trained on),
    the ensemble and the thresholds."""

    detector: FaceDetector
    ensemble: PadEnsemble
    thresholds: PadThresholds


# A full BGR frame (analysis size) and the face box of its landmarks (models/pad.py `landmark_box`, pixels).
PadFrame = tuple[np.ndarray, tuple[float, float, float, float]]

# SCRFD looks for PAD's box on a square this many landmark boxes wide around the face, at this input size,
# instead of on the whole frame at 640 px: a sixth of the pixels, the detector's own box (see pad_box).
PAD_CANVAS = 2.5
PAD_CANVAS_PX = 256


def load_pad_models(model_dir: str, calibration_file: str = "", detector: FaceDetector | None = None) -> PadModels:
    """The configured PAD folder (SHA-256 checked) with its thresholds; ModelFileError or
    PadCalibrationError when unusable. Pass the service's detector to use its model file."""
    from ..models.detector import cpu_session
    from ..models.loader import load_face_models
    from ..models.pad import load_pad
    from ..spoof.calibration import load_thresholds

    ensemble = load_pad(model_dir)
    thresholds = load_thresholds(calibration_file)
    source = detector or load_face_models().detector
    # A session of its own on one thread, as the PAD networks: the same boxes, and half the CPU time of
    # ONNX Runtime's default threads on a busy machine (they spin while they wait: 24 against 46-58 ms
    # of CPU a frame measured on the shared 2-core machine at a load of 10).
    own = FaceDetector(source.model_file, cpu_session(source.model_file, threads=1)).prepare(source.det_thresh)
    return PadModels(own, ensemble, thresholds)


def pad_models_for_service(model_dir: str, required: bool, calibration_file: str = "", detector: FaceDetector | None = None) -> PadModels | None:
    """At start-up: the PAD models, or None (said loudly) when none are configured and none are required.

    A configured folder that is missing or fails its checks always stops the start (ModelFileError).
    """
    if not model_dir:
        if required:
            raise ModelFileError("REALNAME_PAD_REQUIRED is set but REALNAME_PAD_MODEL_DIR is empty (see `python -m server models`)")
        log.warning(
            "PASSIVE ANTI-SPOOFING IS UNAVAILABLE: no PAD models in REALNAME_PAD_MODEL_DIR or MODELS_DIR/pad, so passed "
            "checks on live keys go to review (unless REALNAME_APPROVE_WITHOUT_ANTI_SPOOFING=true); add them with: "
            "python -m server models import-pad FOLDER"
        )
        return None
    return load_pad_models(model_dir, calibration_file, detector)


class LivenessAnalyzer:
    def __init__(
        self,
        landmarker: FaceLandmarker | LandmarkerPool,
        engine: LivenessEngine,
        timings: FrameTimings | None = None,
        pad_policy: PadFramePolicy | None = None,
        running_pad: RunningPad[PadFrame] | None = None,
    ) -> None:
        self.landmarker = landmarker
        self.engine = engine
        self.kept_faces: dict[str, np.ndarray] = {}  # slot -> BGR crop around the face
        self.timings = timings
        self.frames = 0
        # Full frames (BGR, analysis size) for passive anti-spoofing, when a policy is given: scored after
        # the check (replays), unless a running verdict takes them.
        self.pad_policy = pad_policy
        self.pad_frames: SpreadSample[tuple[PadFrame, float]] | None = (  # ((BGR, face box), face luma)
            SpreadSample(pad_policy.max_frames, pad_policy.min_gap_s) if pad_policy is not None and running_pad is None else None
        )
        self.flatness = FlatnessTracker()  # the face's departure from one homography, over the whole check
        # Live: frames go to a running verdict, scored while the check goes on, from the first frontal, sharp
        # face (the engine's neutral start; its baseline, once known, is the reference pose).
        self.running_pad = running_pad
        self.scenes: SpreadSample[np.ndarray] = SpreadSample(SCENE_FRAMES, SCENE_GAP_S)  # BGR, SCENE_SIDE
        self.repeated_frames = 0  # analysed frames identical to the previous analysed frame
        self.analysed_pairs = 0
        self._last_fingerprint: bytes | None = None
        self.continuity = ContinuityTracker()  # cuts in the stream (spoof/continuity.py), fed by `observe`
        self.movement = FingerprintRecorder()  # the face's movement, against earlier checks (spoof/replay_fingerprint.py)
        self.rigidity = RigidityTracker()  # turned faces against the neutral one (spoof/texture_rigidity.py)
        self._last_t: float | None = None
        self.watch = ChangeWatch()  # frames skipped by the rate where the eyes or face changed are analysed (change_watch.py)
        self._watch_asked = False
        self.start_times: dict[str, float] = {}  # see _note_start
        self._gate_judged = 0  # the running PAD's scores from the anchor on that the engine's light was judged with
        self._last_analysed: tuple[FrameSignals, list] = (FrameSignals(0.0, 0), [])  # the last analysed frame's signals and landmarks
        self._reformatter = None  # made on the first frame (PyAV is imported with the video stack)

    def wants(self, t: float) -> bool:
        """Whether a frame at t is needed by the engine's current step, or the change watch asked for the
        frame just observed (the live connection skips the others the same way, by `frame_due` and `observe`)."""
        return self._watch_asked or frame_due(t, self._last_t, self.engine.needed_fps())

    def observe(self, frame, t: float) -> bool:
        """Every frame of the stream, analysed or not (cheap: the luma plane's thumbnail): its continuity,
        and in the steps it watches the change watch's cue; True: analyse it whatever the step's rate."""
        self.continuity.add_frame(t, frame)
        engine = self.engine
        try:
            self._watch_asked = (change_watch.stretch_due(engine, t) or self._gate_due(t)
                                 or self.watch.asks(change_watch.watched_step(engine), lambda: change_watch.luma_plane(frame)))
        except IndexError:
            # The engine is read here on the receiving thread while the analysis thread updates it: a stretch
            # emptied between two reads. The rate decides for this frame; raising would make the connection
            # drop its observer, and with it the continuity of every later frame.
            self._watch_asked = False
        return self._watch_asked

    def _gate_due(self, t: float) -> bool:
        """While the light gate waits: a frame it needs scored (RunningPad.gate_due), or the first after a score of
        the steady stream the engine has not judged (it may open the gate: the ask need not wait for the step's rate)."""
        running, engine = self.running_pad, self.engine
        if running is None or engine.light_gate is None or engine.phase != Phase.START or engine.light == Light.LIT:
            return False
        return running.gate_due(t) or running.steady_answered() > self._gate_judged

    def analyse_frame(self, frame, t: float) -> Verdict:
        """An av.VideoFrame at time t (seconds)."""
        start = time.perf_counter()
        if self._reformatter is None:
            from av.video.reformatter import VideoReformatter

            self._reformatter = VideoReformatter()
        rgb = frame_to_rgb(frame, self._reformatter)
        if self.timings is not None:
            self.timings.convert_ms.append((time.perf_counter() - start) * 1000)
        verdict = self._analyse(rgb, t)
        self._renew_watch_reference(frame)
        return verdict

    def _renew_watch_reference(self, frame) -> None:
        """The change watch compares the frames received next with the last analysed one with open eyes."""
        s, faces = self._last_analysed
        if s.face_count != 1:
            self.watch.clear()
        elif change_watch.reference_frame(self.engine, s):
            self.watch.set_reference(change_watch.luma_plane(frame), faces[0].points)

    def _analyse(self, rgb: np.ndarray, t: float) -> Verdict:
        start = time.perf_counter()
        self._last_t = t
        faces = self.landmarker.get(rgb)
        mid = time.perf_counter()
        signals = frame_signals(t, faces, rgb)
        self._last_analysed = (signals, faces)
        starting, held = self.engine.phase == Phase.START, self.engine.neutral.held_from()
        verdict = self._update_engine(signals)
        if starting:
            self._note_start(t, held)
        self.movement.add(signals)
        if verdict.keep_frame is not None and signals.box is not None:
            self.kept_faces[verdict.keep_frame] = face_crop(rgb, signals.box)
        self._count_repeat(rgb)
        if len(faces) == 1 and self.flatness.due(t):
            self.flatness.add(t, shape_of(faces[0].points, rgb.shape[1], rgb.shape[0]))
        if len(faces) == 1:
            b = self.engine.baseline
            self.rigidity.add(t, rgb, faces[0].points, signals.yaw, signals.pitch, signals.eyes_closed, (b.yaw, b.pitch) if b is not None else None)
        self._offer_pad_frame(signals, rgb, faces)
        self.frames += 1
        if self.timings is not None:
            self.timings.landmarks_ms.append((mid - start) * 1000)
            self.timings.rest_ms.append((time.perf_counter() - mid) * 1000)
        return verdict

    def _update_engine(self, s: FrameSignals) -> Verdict:
        """The engine's verdict, with the light the running PAD measured (liveness/light.py). When a face
        held for more light is lit at last, the dark frames chosen so far are forgotten: PAD judges the lit face."""
        if self.running_pad is None or self.engine.light_gate is None or self.engine.phase != Phase.START:
            return self.engine.update(s)
        was = self.engine.light
        self._gate_judged = self.running_pad.steady_answered()
        noises, measured_at = self.running_pad.measured()
        verdict = self.engine.update(s, noises, self.running_pad.first_scoring(), measured_at)
        if self.engine.t0 == s.t:  # the stream's first frame: PAD's sample chooses the first frame that may say lit at once
            self.running_pad.anchor(s.t, self.engine.light_gate.settle_s, self.engine.light_gate.frames)
        if was == Light.DARK and self.engine.light == Light.LIT:
            self.running_pad.restart()
        if self.engine.phase != Phase.START:
            self.running_pad.check_started(s.t)
        return verdict

    def _note_start(self, t: float, held: float | None) -> None:
        """Where the wait for the first challenge went (live_stats `start_s`, the customer's time): stream seconds
        from the first analysed frame until the neutral face had held, the light gate said lit, the first ask."""
        engine, times = self.engine, self.start_times
        t0 = engine.t0 if engine.t0 is not None else t
        if engine.light_gate is not None:
            if engine.light == Light.LIT:
                times.setdefault("lit", round(t - t0, 3))
            else:
                times.pop("lit", None)
        if engine.phase == Phase.CHALLENGE:
            times["asked"] = round(t - t0, 3)
            if held is not None:
                times["held"] = round(max(t0, min(held, t)) - t0, 3)

    def _count_repeat(self, rgb: np.ndarray) -> None:
        fingerprint = frame_fingerprint(rgb)
        if self._last_fingerprint is not None:
            self.analysed_pairs += 1
            self.repeated_frames += fingerprint == self._last_fingerprint
        self._last_fingerprint = fingerprint

    def _offer_pad_frame(self, s: FrameSignals, rgb: np.ndarray, faces: list) -> None:
        """Frames of one sharp, near-frontal face: for PAD, and (reduced) for a reviewer."""
        b = self.engine.baseline
        running = self.running_pad is not None and self.running_pad.due(s.t)
        sampled = self.pad_frames is not None and self.pad_frames.due(s.t)
        scene = self.scenes.due(s.t)
        if not (running or sampled or scene):
            return
        reference = (b.yaw, b.pitch) if b is not None else None
        policy = self.pad_policy or PadFramePolicy()
        if not policy.wants(s.face_count, s.yaw, s.pitch, s.sharpness, s.face_px, reference):
            return
        if running or sampled:
            frame = (np.ascontiguousarray(rgb[:, :, ::-1]), landmark_box(faces[0].points, rgb.shape[1], rgb.shape[0]))
            if running and self.running_pad is not None:
                self.running_pad.offer(s.t, frame, s.brightness)
            elif self.pad_frames is not None:
                self.pad_frames.add(s.t, (frame, s.brightness))
        if scene:
            self.scenes.add(s.t, scene_frame(rgb))

    def pad_deformation(self) -> float | None:
        """The check's deformation for the PAD rule (flatness.py): None once a deforming challenge passed."""
        result = self.engine.result
        return deformation_for_rule(self.flatness.deformation, result.challenges if result is not None else self.engine.records)

    def scene_frames(self) -> list[np.ndarray]:
        """A few whole frames (BGR, at most SCENE_SIDE px) spread over the check, for a reviewer."""
        return [frame for _, frame in self.scenes.items]

    def frames_for_pad(self) -> list[tuple[PadFrame, float]]:
        """The kept full frames and face boxes with their face luma, in time order; hand them to score_pad in a worker thread."""
        return [frame for _, frame in self.pad_frames.items] if self.pad_frames is not None else []

    def faces_for_matching(self) -> list[np.ndarray]:
        """Kept crops in time order (start, after each challenge)."""
        result = self.engine.result
        slots = result.frame_slots if result is not None else tuple(self.kept_faces)
        return [self.kept_faces[s] for s in slots if s in self.kept_faces]

    def close(self) -> None:
        if self.running_pad is not None:
            self.running_pad.close()  # a check that ended undecided scores nothing more
        self.landmarker.close()


def face_crop(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """A BGR copy of the face and some surroundings, for the face detector and embedder."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    margin = CROP_MARGIN * max(x1 - x0, y1 - y0)
    left, top = int(max(0, x0 - margin)), int(max(0, y0 - margin))
    right, bottom = int(min(w, x1 + margin)), int(min(h, y1 + margin))
    return np.ascontiguousarray(rgb[top:bottom, left:right, ::-1])


def scene_frame(rgb: np.ndarray) -> np.ndarray:
    """A BGR copy of the whole frame, its long side at most SCENE_SIDE."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, SCENE_SIDE / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    return np.ascontiguousarray(small[:, :, ::-1])


def pad_box(detector: FaceDetector, bgr: np.ndarray, near: tuple[float, float, float, float]) -> tuple[float, float, float, float] | None:
    """SCRFD's box of the face at `near` (its landmark box), in pixels of the whole frame: the largest face
    on a square PAD_CANVAS landmark boxes wide around it at PAD_CANVAS_PX (None: none found there).

    The networks' scores hang on their crop (a close print's moves from 0.01 to 0.95 with a box a few % off),
    and a box placed from the landmarks alone sits a few % off SCRFD's in a way that differs from person to
    person (the forehead), so the box stays the detector's; the landmarks only say where to look."""
    h, w = bgr.shape[:2]
    cx, cy, side = (near[0] + near[2]) / 2, (near[1] + near[3]) / 2, PAD_CANVAS * max(near[2] - near[0], near[3] - near[1])
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    right, bottom = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    if right - left < 8 or bottom - top < 8:
        return None
    faces = detector.get(np.ascontiguousarray(bgr[top:bottom, left:right]), input_size=(PAD_CANVAS_PX, PAD_CANVAS_PX))
    if not faces:
        return None
    x0, y0, x1, y1 = (float(v) for v in max(faces, key=lambda f: f.area).box[:4])
    return x0 + left, y0 + top, x1 + left, y1 + top


def score_frame(frame: PadFrame, models: PadModels) -> tuple[float, float | None, float | None] | None:
    """Blocking: the frame's face (pad_box) scored by the ensemble on the whole frame, with its noise after
    the exposure rule and its fine detail over that noise (None: the detector found no face)."""
    bgr, near = frame
    box = pad_box(models.detector, bgr, near)
    if box is None:
        return None
    return models.ensemble.get(bgr, box), models.ensemble.noise(bgr, box), models.ensemble.detail(bgr, box)


def score_pad(frames: list[tuple[PadFrame, float]], models: PadModels, deformation: float | None = None) -> PadResult:
    """Blocking (run it in a worker thread): each full frame and face box (with its face luma) scored,
    aggregated and decided with the check's `deformation` (flatness.py)."""
    start = time.perf_counter()
    scored = [(f, luma) for f, luma in ((score_frame(frame, models), luma) for frame, luma in frames) if f is not None]
    return PadResult.of([f[0] for f, _ in scored], models.thresholds, (time.perf_counter() - start) * 1000, len(frames), deformation,
                        [luma for _, luma in scored], [f[1] for f, _ in scored],
                        [f[2] for f, _ in scored])


def score_next(running: RunningPad[PadFrame], models: PadModels) -> bool:
    """Blocking (a worker thread): score the newest frame waiting for the running verdict, if any and no
    other job is scoring; whether one was scored."""
    taken = running.take()
    if taken is None:
        return False
    slot, frame = taken
    start = time.perf_counter()
    scored: tuple[float, float | None, float | None] | None = None
    try:
        scored = score_frame(frame, models)
    finally:
        running.scored(slot, scored[0] if scored else None, (time.perf_counter() - start) * 1000, scored[1] if scored else None,
                       scored[2] if scored else None)
    return True
