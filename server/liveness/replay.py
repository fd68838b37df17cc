"""Replays a video file through the same analyzer and engine as the live flow (offline tool, tests)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..models.loader import new_landmarker
from ..spoof.pad import PadFramePolicy, PadResult, apply_pad
from ..spoof.signals import RiskSignal, StreamFacts, check_signals
from .analyzer import FrameTimings, LivenessAnalyzer, PadModels, score_pad
from .challenges import Challenge
from .engine import LivenessEngine, LivenessResult, Thresholds


class VideoError(Exception):
    code = "unreadable_video"


@dataclass
class ReplayReport:
    result: LivenessResult
    frames: int
    analysed_fps: float
    faces: list[np.ndarray]  # kept BGR face crops, for face matching
    pad: PadResult | None = None  # None: no PAD model configured
    signals: tuple[RiskSignal, ...] = ()
    liveness: LivenessResult | None = None  # the active challenges' own verdict, before PAD

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
    path: str | Path,
    challenges: list[Challenge],
    landmarker_file: Path,
    challenge_timeout_s: float = 8.0,
    start_timeout_s: float = 20.0,
    thresholds: Thresholds | None = None,
    timings: FrameTimings | None = None,
    pad_models: PadModels | None = None,
    pad_policy: PadFramePolicy | None = None,
) -> ReplayReport:
    """The file is taken as unmirrored camera frames, timed by their presentation timestamps.

    With `pad_models`, near-frontal frames are kept during the check and scored after it, as in the live
    flow; an attack verdict fails the check with `presentation_attack`.
    """
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise VideoError(f"cannot open {path}: {error}") from error
    engine = LivenessEngine(challenges, thresholds, challenge_timeout_s, start_timeout_s)
    policy = (pad_policy or PadFramePolicy()) if pad_models is not None else None
    analyzer = LivenessAnalyzer(new_landmarker(landmarker_file), engine, timings, policy)
    started = time.perf_counter()
    last_t = 0.0
    sizes: list[tuple[float, int, int]] = []
    try:
        if not container.streams.video:
            raise VideoError(f"{path} has no video stream")
        stream = container.streams.video[0]
        for index, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else index / float(stream.average_rate or 30)
            last_t = max(last_t, t)
            sizes.append((t, frame.width, frame.height))
            if analyzer.analyse_frame(frame, t).result is not None:
                break
    except av.error.FFmpegError as error:
        if analyzer.frames == 0:
            raise VideoError(f"cannot decode {path}: {error}") from error
    finally:
        container.close()
        analyzer.close()
    if analyzer.frames == 0:
        raise VideoError(f"{path} has no decodable video frames")
    elapsed = time.perf_counter() - started
    liveness = engine.result or engine.finish(last_t)
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
        result, analyzer.frames, analyzer.frames / max(elapsed, 1e-9), analyzer.faces_for_matching(), pad, tuple(signals), liveness
    )
