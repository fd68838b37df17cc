"""Replays a video file through the same analyzer and engine as the live flow (offline tool, tests)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..models.loader import new_landmarker
from ..spoof.pad import PadFramePolicy, PadResult, apply_pad
from ..spoof.signals import RiskSignal, StreamFacts, check_signals
from .analyzer import FrameTimings, LivenessAnalyzer, PadModels, score_pad
from .challenges import Challenge
from .engine import LivenessEngine, LivenessResult, Thresholds


class VideoError(Exception):
    code = "unreadable_video"


class ClipTooLong(VideoError):
    code = "too_long"


@dataclass(frozen=True)
class ClipLimits:
    """For untrusted clips (a customer's recording): what is decoded at all."""

    max_seconds: float
    max_pixels: int
    max_fps: float = 60.0  # on average over the clip: more frames would only cost analysis time
    formats: frozenset[str] = frozenset({"matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2"})  # MediaRecorder's


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
) -> ReplayReport:
    """The file is taken as unmirrored camera frames, timed by their presentation timestamps.

    With `pad_models`, near-frontal frames are chosen during the check as the live flow chooses them and
    scored after it (the live flow scores each as it is chosen); an attack verdict fails the check with
    `presentation_attack`.

    With `limits` (an untrusted clip), only the allowed containers are read, every frame is size-checked,
    and the clip is decoded to its end (its length is checked) but never beyond `max_seconds`.
    `prompts_at`: when a recorded check's page showed each challenge (see liveness/schedule.py).
    """
    import av

    try:
        container = av.open(path if hasattr(path, "read") else str(path), mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise VideoError(f"cannot open the video: {error}") from error
    if limits is not None and container.format.name not in limits.formats:
        container.close()
        raise VideoError(f"unexpected container {container.format.name}")
    engine = LivenessEngine(challenges, thresholds, challenge_timeout_s, start_timeout_s, prompts_at)
    policy = (pad_policy or PadFramePolicy()) if pad_models is not None else None
    analyzer = LivenessAnalyzer(new_landmarker(landmarker_file), engine, timings, policy)
    started = time.perf_counter()
    first_t: float | None = None
    last_t = 0.0
    sizes: list[tuple[float, int, int]] = []
    try:
        if not container.streams.video:
            raise VideoError("the video has no video stream")
        stream = container.streams.video[0]
        for index, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else index / float(stream.average_rate or 30)
            first_t = t if first_t is None else first_t
            last_t = max(last_t, t)
            if limits is not None:
                if frame.width * frame.height > limits.max_pixels:
                    raise VideoError(f"frames of {frame.width}x{frame.height} are too large")
                if last_t - first_t > limits.max_seconds:
                    raise ClipTooLong(f"longer than {limits.max_seconds:.0f} s")
                if index > limits.max_seconds * limits.max_fps:
                    raise VideoError("too many frames")
            if engine.result is not None:
                continue  # decoded only to learn the clip's length
            sizes.append((t, frame.width, frame.height))
            # A recording's timetable counts from its first frame.
            clock = t - first_t if prompts_at is not None else t
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
    elapsed = time.perf_counter() - started
    liveness = engine.result or engine.finish(last_t - (first_t or 0.0) if prompts_at is not None else last_t)
    pad = score_pad(analyzer.frames_for_pad(), pad_models) if pad_models is not None else None
    facts = StreamFacts(
        sizes=sizes,  # no capture_s: a file's timestamps are not a camera's clock
        repeated_frames=analyzer.repeated_frames,
        analysed_pairs=analyzer.analysed_pairs,
        reactions=[(c.type.value, c.reaction_s) for c in liveness.challenges],
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
    )
