"""Replays a video file through the same analyzer and engine as the live flow (offline tool, tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..models.loader import new_landmarker
from ..spoof.pad import PadFramePolicy, PadResult, apply_pad
from ..spoof.replay_fingerprint import Fingerprint
from ..spoof.signals import RiskSignal, StreamFacts, check_signals
from ..spoof.texture_rigidity import Rigidity
from .analyzer import FrameTimings, LivenessAnalyzer, PadModels, frame_due, score_pad
from .challenges import Challenge
from .engine import LivenessEngine, LivenessResult, Thresholds


class VideoError(Exception):
    code = "unreadable_video"


class ClipTooLong(VideoError):
    code = "too_long"


class ClipTooShort(VideoError):
    code = "too_short"


class ClipOverBudget(VideoError):
    code = "over_budget"


class ClipCancelled(VideoError):
    code = "cancelled"


@dataclass(frozen=True)
class ClipLimits:
    """For untrusted clips (a customer's recording): what is decoded at all. The container's and the
    stream's headers and every packet's timestamp are checked before a single frame is decoded."""

    max_seconds: float
    max_pixels: int
    min_seconds: float = 0.0  # from the first frame's timestamp to the last one's
    max_fps: float = 60.0  # on average over the clip: more frames would only cost decoding time
    max_side: int = 1920  # a camera's frames in a browser; larger ones are refused, never decoded
    analysis_fps: float | None = None  # frames analysed a second at most (the others are only decoded)
    cpu_budget_s: float | None = None  # CPU seconds of the decoding thread, then the clip is refused
    formats: frozenset[str] = frozenset({"matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2"})  # MediaRecorder's
    codecs: frozenset[str] = frozenset({"vp8", "vp9", "h264", "av1"})

    def frame_size_problem(self, width: int, height: int) -> str | None:
        if max(width, height) > self.max_side or width * height > self.max_pixels:
            return f"frames of {width}x{height} are too large (at most {self.max_side} pixels a side)"
        return None


@dataclass(frozen=True)
class ClipHeaders:
    """What the container says of a clip, read without decoding it."""

    width: int
    height: int
    packets: int
    seconds: float


def probe_clip(container, limits: ClipLimits) -> ClipHeaders:
    """Refuse a clip from its container, stream headers and packet timestamps alone (no decoding):
    format, codec, frame size, frame count and length. Demuxing costs a fraction of decoding, and
    MediaRecorder's WebM declares no length of its own, so the packets are counted."""
    import av

    if container.format.name not in limits.formats:
        raise VideoError(f"unexpected container {container.format.name}")
    if not container.streams.video:
        raise VideoError("the video has no video stream")
    stream = container.streams.video[0]
    codec = stream.codec_context
    if codec.name not in limits.codecs:
        raise VideoError(f"unexpected video codec {codec.name}")
    problem = limits.frame_size_problem(codec.width, codec.height)
    if problem:
        raise VideoError(problem)
    declared = float(container.duration) / av.time_base if container.duration else 0.0
    if declared > limits.max_seconds + 1:
        raise ClipTooLong(f"longer than {limits.max_seconds:.0f} s")
    max_packets = int(limits.max_seconds * limits.max_fps) + 1
    time_base = float(stream.time_base or 0) or 1 / 1000
    packets, first, last = 0, None, 0.0
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the demuxer's flush packet
            packets += 1
            if packets > max_packets:
                raise VideoError("too many frames")
            if packet.pts is not None:
                t = packet.pts * time_base
                first = t if first is None else min(first, t)
                last = max(last, t)
                if last - first > limits.max_seconds:
                    raise ClipTooLong(f"longer than {limits.max_seconds:.0f} s")
    except av.error.FFmpegError as error:
        raise VideoError(f"cannot read the video: {error}") from error
    if packets == 0:
        raise VideoError("the video has no video frames")
    if last - (first or 0.0) < limits.min_seconds:
        raise ClipTooShort(f"shorter than {limits.min_seconds:.0f} s")
    return ClipHeaders(codec.width, codec.height, packets, last - (first or 0.0))


@dataclass
class ReplayReport:
    result: LivenessResult
    frames: int
    analysed_fps: float
    faces: list[np.ndarray]  # kept BGR face crops, for face matching
    pad: PadResult | None = None  # None: no PAD model configured
    signals: tuple[RiskSignal, ...] = ()
    liveness: LivenessResult | None = None  # the active challenges' own verdict, before PAD
    duration_s: float = 0.0  # from the first frame to the last decoded one
    scenes: list[np.ndarray] = field(default_factory=list)  # whole frames, reduced, for a reviewer
    fingerprint: Fingerprint | None = None  # the face's movement, against earlier checks (replayed_check)
    rigidity: Rigidity | None = None  # turned faces against the neutral one (rigid_texture)

    def to_dict(self) -> dict:
        data = self.result.to_dict()
        return {
            "passed": data["passed"],
            "reason": data["reason"],
            "detail": data["detail"],
            "challenges": data["challenges"],
            "frames": self.frames,
            "analysed_fps": round(self.analysed_fps, 1),
            "pad": (self.pad or PadResult.unavailable()).to_dict(),
            "signals": [s.to_dict() for s in self.signals],
        }


def _open(path: str | Path | BinaryIO):
    import av

    try:
        return av.open(path if hasattr(path, "read") else str(path), mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise VideoError(f"cannot open the video: {error}") from error


def _budget(seconds: float | None) -> Callable[[], bool]:
    """Whether this thread has used more than `seconds` of CPU since the call (None: never)."""
    if seconds is None:
        return lambda: False
    started = time.thread_time()
    return lambda: time.thread_time() - started > seconds


def replay_video(
    path: str | Path | BinaryIO,
    challenges: list[Challenge],
    landmarker_file: Path,
    challenge_timeout_s: float = 8.0,
    start_timeout_s: float = 20.0,
    thresholds: Thresholds | None = None,
    timings: FrameTimings | None = None,
    pad_models: PadModels | None = None,
    pad_policy: PadFramePolicy | None = None,
    prompts_at: list[float] | None = None,
    limits: ClipLimits | None = None,
    cancelled: threading.Event | None = None,
) -> ReplayReport:
    """The file is taken as unmirrored camera frames, timed by their presentation timestamps.

    With `pad_models`, near-frontal frames are chosen during the check as the live flow chooses them and
    scored after it (the live flow scores each as it is chosen); an attack verdict fails the check with
    `presentation_attack`.

    With `limits` (an untrusted clip), the clip is first checked from its headers and packets
    (`probe_clip`), then decoded on this thread alone, every frame size-checked, at most
    `analysis_fps` frames a second analysed, to its end (its length is checked) but never beyond
    `max_seconds` nor past the CPU budget. `cancelled`: set to stop at the next frame (ClipCancelled).
    `prompts_at`: when a recorded check's page showed each challenge (see liveness/schedule.py).
    """
    import av

    container = _open(path)
    if limits is not None:
        try:
            probe_clip(container, limits)
        finally:
            container.close()
        if hasattr(path, "seek"):
            path.seek(0)
        container = _open(path)
        container.streams.video[0].thread_count = 1  # decoded on this (low-priority, budgeted) thread only
    over_budget = _budget(limits.cpu_budget_s if limits is not None else None)
    engine = LivenessEngine(challenges, thresholds, challenge_timeout_s, start_timeout_s, prompts_at)
    policy = (pad_policy or PadFramePolicy()) if pad_models is not None else None
    analyzer = LivenessAnalyzer(new_landmarker(landmarker_file), engine, timings, policy)
    started = time.perf_counter()
    first_t: float | None = None
    last_t = 0.0
    last_analysed: float | None = None
    sizes: list[tuple[float, int, int]] = []
    try:
        if not container.streams.video:
            raise VideoError("the video has no video stream")
        stream = container.streams.video[0]
        for index, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else index / float(stream.average_rate or 30)
            first_t = t if first_t is None else first_t
            last_t = max(last_t, t)
            if cancelled is not None and cancelled.is_set():
                raise ClipCancelled("the check was cancelled")
            if limits is not None:
                problem = limits.frame_size_problem(frame.width, frame.height)
                if problem:  # a key frame may change the size the headers declared
                    raise VideoError(problem)
                if last_t - first_t > limits.max_seconds:
                    raise ClipTooLong(f"longer than {limits.max_seconds:.0f} s")
                if index > limits.max_seconds * limits.max_fps:
                    raise VideoError("too many frames")
                if over_budget():
                    raise ClipOverBudget(f"the video took more than {limits.cpu_budget_s:.0f} s of processing")
            if engine.result is not None:
                continue  # decoded only to learn the clip's length
            # A recording's timetable counts from its first frame.
            clock = t - first_t if prompts_at is not None else t
            analyzer.observe(frame, clock)
            if limits is not None and not frame_due(t, last_analysed, limits.analysis_fps):
                continue  # beyond the analysis rate: decoded, not analysed
            last_analysed = t
            sizes.append((t, frame.width, frame.height))
            if analyzer.analyse_frame(frame, clock).result is not None and limits is None:
                break
    except av.error.FFmpegError as error:
        if analyzer.frames == 0:
            raise VideoError(f"cannot decode the video: {error}") from error
    finally:
        container.close()
        analyzer.close()
    if analyzer.frames == 0:
        raise VideoError("the video has no decodable video frames")
    return _report(engine, analyzer, sizes, time.perf_counter() - started, first_t, last_t, pad_models, prompts_at is not None)


def replay_frames(
    source: Callable[[LivenessEngine], Iterable[tuple[object, float]]],
    challenges: list[Challenge],
    landmarker_file: Path,
    challenge_timeout_s: float = 8.0,
    start_timeout_s: float = 20.0,
    pad_models: PadModels | None = None,
    pad_policy: PadFramePolicy | None = None,
) -> ReplayReport:
    """As `replay_video` (every frame analysed), for frames made as the check goes: `source(engine)` yields
    (av.VideoFrame, t) and may read the engine between frames (what it asked and when), as a player that
    answers the prompts would."""
    engine = LivenessEngine(challenges, None, challenge_timeout_s, start_timeout_s)
    policy = (pad_policy or PadFramePolicy()) if pad_models is not None else None
    analyzer = LivenessAnalyzer(new_landmarker(landmarker_file), engine, None, policy)
    started = time.perf_counter()
    first_t: float | None = None
    last_t = 0.0
    sizes: list[tuple[float, int, int]] = []
    try:
        for frame, t in source(engine):
            first_t = t if first_t is None else first_t
            last_t = max(last_t, t)
            analyzer.observe(frame, t)
            sizes.append((t, frame.width, frame.height))
            if analyzer.analyse_frame(frame, t).result is not None:
                break
    finally:
        analyzer.close()
    if analyzer.frames == 0:
        raise VideoError("no frame was analysed")
    return _report(engine, analyzer, sizes, time.perf_counter() - started, first_t, last_t, pad_models, False)


def _report(engine: LivenessEngine, analyzer: LivenessAnalyzer, sizes: list[tuple[float, int, int]], elapsed: float,
            first_t: float | None, last_t: float, pad_models: PadModels | None, scheduled: bool) -> ReplayReport:
    """The check's verdict once its frames are analysed: the engine's, PAD's and the stream's signals."""
    liveness = engine.result or engine.finish(last_t - (first_t or 0.0) if scheduled else last_t)
    pad = score_pad(analyzer.frames_for_pad(), pad_models, analyzer.pad_deformation()) if pad_models is not None else None
    rigidity = analyzer.rigidity.result()
    facts = StreamFacts(
        sizes=sizes,  # no capture_s: a file's timestamps are not a camera's clock
        repeated_frames=analyzer.repeated_frames,
        analysed_pairs=analyzer.analysed_pairs,
        reactions=[(c.type.value, c.reaction_s) for c in liveness.challenges],
        continuity=analyzer.continuity.steps,
        challenge_spans=liveness.challenge_spans(),
        reaction_windows=liveness.challenge_spans(to_onset=True),
        rigidity=rigidity,
    )
    signals = check_signals(facts, pad if pad is not None else PadResult.unavailable(), pad_models.thresholds if pad_models else None)
    result = apply_pad(liveness, pad) if pad is not None else liveness
    return ReplayReport(
        result,
        analyzer.frames,
        analyzer.frames / max(elapsed, 1e-9),
        analyzer.faces_for_matching(),
        pad,
        tuple(signals),
        liveness,
        last_t - (first_t or 0.0),
        analyzer.scene_frames(),
        analyzer.movement.fingerprint(),
        rigidity,
    )
