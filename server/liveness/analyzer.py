"""One stream's liveness analysis: frame -> landmarks -> signals -> engine verdict, keeping face crops.

Blocking (it runs the landmarker); the live flow calls it from a worker thread, the replay tool directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..models.landmarker import FaceLandmarker
from .engine import LivenessEngine, Verdict
from .signals import frame_signals

# Frames are analysed at most this large (long side). MediaPipe works on 256 px crops internally, so
# larger frames only cost conversion time; the kept face crops stay well above the 112 px ArcFace input.
MAX_ANALYSIS_SIDE = 640
CROP_MARGIN = 0.6  # kept face crops extend this many face-widths beyond the landmarks on each side


@dataclass
class FrameTimings:
    convert_ms: list[float] = field(default_factory=list)
    landmarks_ms: list[float] = field(default_factory=list)
    rest_ms: list[float] = field(default_factory=list)


def analysis_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, MAX_ANALYSIS_SIDE / max(width, height))
    # Even sizes keep the video scaler on its fast path.
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def frame_to_arrays(frame) -> tuple[np.ndarray, np.ndarray]:
    """(RGB, luma) of an av.VideoFrame, scaled to the analysis size in one pass."""
    width, height = analysis_size(frame.width, frame.height)
    rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
    return rgb, _luma(rgb)


def _luma(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


class LivenessAnalyzer:
    def __init__(self, landmarker: FaceLandmarker, engine: LivenessEngine, timings: FrameTimings | None = None) -> None:
        self.landmarker = landmarker
        self.engine = engine
        self.kept_faces: dict[str, np.ndarray] = {}  # slot -> BGR crop around the face
        self.timings = timings
        self.frames = 0

    def analyse_frame(self, frame, t: float) -> Verdict:
        """An av.VideoFrame at time t (seconds)."""
        start = time.perf_counter()
        rgb, gray = frame_to_arrays(frame)
        if self.timings is not None:
            self.timings.convert_ms.append((time.perf_counter() - start) * 1000)
        return self._analyse(rgb, gray, t)

    def _analyse(self, rgb: np.ndarray, gray: np.ndarray, t: float) -> Verdict:
        start = time.perf_counter()
        faces = self.landmarker.get(rgb, int(t * 1000))
        mid = time.perf_counter()
        signals = frame_signals(t, faces, gray)
        verdict = self.engine.update(signals)
        if verdict.keep_frame is not None and signals.box is not None:
            self.kept_faces[verdict.keep_frame] = face_crop(rgb, signals.box)
        self.frames += 1
        if self.timings is not None:
            self.timings.landmarks_ms.append((mid - start) * 1000)
            self.timings.rest_ms.append((time.perf_counter() - mid) * 1000)
        return verdict

    def faces_for_matching(self) -> list[np.ndarray]:
        """Kept crops in time order (start, after each challenge)."""
        result = self.engine.result
        slots = result.frame_slots if result is not None else tuple(self.kept_faces)
        return [self.kept_faces[s] for s in slots if s in self.kept_faces]

    def close(self) -> None:
        self.landmarker.close()


def face_crop(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """A BGR copy of the face and some surroundings, for the face detector and embedder."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    margin = CROP_MARGIN * max(x1 - x0, y1 - y0)
    left, top = int(max(0, x0 - margin)), int(max(0, y0 - margin))
    right, bottom = int(min(w, x1 + margin)), int(min(h, y1 + margin))
    return np.ascontiguousarray(rgb[top:bottom, left:right, ::-1])
