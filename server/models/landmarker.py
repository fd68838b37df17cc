"""MediaPipe Face Landmarker (Tasks API, IMAGE mode): 478 landmarks, blendshapes and head pose matrix.

IMAGE mode: every call stands alone, so one landmarker serves frames of any stream, and the service keeps
one per analysis thread (LandmarkerPool) instead of one per live check. VIDEO mode tracked the face from
frame to frame and smoothed the landmarks; it changed none of the 18 shared clip cases' verdicts against
IMAGE mode (docs/benchmarks.md), and its graph per check cost memory, a model load at every check's start
and CPU: nine checks' graphs, each called in turn, did not stay in the caches that two do.

It asks for two faces, so a second face is seen: MediaPipe runs its face detector on every frame. Asking
for one face and looking for a second with the bundle's detector a few times a second was tried in VIDEO
mode and not kept (it changed 2 of the 18 verdicts). The detector on every frame also finds a face that
moved far between two analysed frames.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Blendshapes the liveness signals read, by MediaPipe category name.
BLENDSHAPES = (
    "eyeBlinkLeft",
    "eyeBlinkRight",
    "jawOpen",
    "mouthSmileLeft",
    "mouthSmileRight",
)


@dataclass(frozen=True)
class FaceLandmarks:
    points: np.ndarray  # (478, 3), x and y normalised to the image, z relative
    blendshapes: dict[str, float]
    matrix: np.ndarray  # (4, 4) facial transformation matrix


@lru_cache(maxsize=4)
def _model_bytes(path: Path) -> bytes:
    """Read once per process: a landmarker is made for every live check."""
    return path.read_bytes()


class FaceLandmarker:
    """One MediaPipe graph: one call at a time (it is not re-entrant), frames of any stream in any order."""

    def __init__(self, model_path: Path, max_faces: int = 2) -> None:
        self.model_path = Path(model_path)
        self.max_faces = max_faces
        self._task = None
        self._direct: _DirectCalls | None = None
        self._lock = threading.Lock()

    def prepare(self) -> FaceLandmarker:
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=_model_bytes(self.model_path)),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=self.max_faces,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._task = vision.FaceLandmarker.create_from_options(options)
        self._direct = _DirectCalls.of(self._task)
        return self

    def get(self, rgb: np.ndarray) -> list[FaceLandmarks]:
        import mediapipe as mp

        if self._task is None:
            raise RuntimeError("FaceLandmarker.prepare() was not called")
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        with self._lock:
            if self._direct is not None:
                return self._direct.detect(self._task, image)
            result = self._task.detect(image)
        faces = []
        for index, landmarks in enumerate(result.face_landmarks):
            points = np.array([(p.x, p.y, p.z) for p in landmarks], dtype=np.float32)
            wanted = {}
            if index < len(result.face_blendshapes):
                wanted = {c.category_name: c.score for c in result.face_blendshapes[index] if c.category_name in BLENDSHAPES}
            matrix = (
                np.asarray(result.facial_transformation_matrixes[index], dtype=np.float32)
                if index < len(result.facial_transformation_matrixes)
                else np.eye(4, dtype=np.float32)
            )
            faces.append(FaceLandmarks(points=points, blendshapes=wanted, matrix=matrix))
        return faces

    def close(self) -> None:
        with self._lock:
            if self._task is not None:
                self._task.close()
                self._task = None


class LandmarkerPool:
    """One landmarker per thread that asks, made on its first call: the live checks share the analysis
    threads' landmarkers, so a check starts without loading a model and nine checks use as many graphs
    as there are threads. Each graph stays with one thread, never called concurrently.

    Streams hand it to their analyzer as their landmarker; `close` is then a stream's release, which
    keeps the landmarkers for the next check. `shutdown` closes them all when the service stops.
    """

    def __init__(self, model_path: Path) -> None:
        self.model_path = Path(model_path)
        self._local = threading.local()
        self._all: list[FaceLandmarker] = []
        self._lock = threading.Lock()
        self._closed = False

    def landmarker(self) -> FaceLandmarker:
        """The calling thread's landmarker (blocking: made on first use)."""
        if self._closed:
            raise RuntimeError("the landmarker pool was shut down")
        landmarker = getattr(self._local, "landmarker", None)
        if landmarker is None:
            landmarker = FaceLandmarker(self.model_path).prepare()
            with self._lock:
                if self._closed:  # shut down while this one was being made
                    landmarker.close()
                    raise RuntimeError("the landmarker pool was shut down")
                self._all.append(landmarker)
            self._local.landmarker = landmarker
        return landmarker

    def get(self, rgb: np.ndarray) -> list[FaceLandmarks]:
        return self.landmarker().get(rgb)

    def close(self) -> None:
        """A stream is done with the pool: nothing to free."""

    @property
    def size(self) -> int:
        return len(self._all)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            landmarkers, self._all = self._all, []
        for landmarker in landmarkers:
            landmarker.close()


class _DirectCalls:
    """MediaPipe's C detection call made from the calling thread, its result read with numpy.

    MediaPipe's Python Tasks API hands every call to a thread of its own per landmarker (SerialDispatcher)
    and rebuilds the result as Python objects: per face 478 NormalizedLandmark dataclasses, field by field
    through ctypes, and 52 blendshape categories. That is about 0.5 ms of Python holding the GIL per frame,
    plus four thread hand-offs that each wait for the GIL behind the event loop and the other streams'
    threads. Here the same C functions are called directly (ctypes releases the GIL during the call) and
    only what the signals use is read: the landmarks as one array copy, five blendshapes, the matrix.
    The dispatcher only serialises calls on one landmarker, which FaceLandmarker's lock does as well
    (MediaPipe's CPU graph has no thread affinity: successive calls may come from different workers).
    The result is identical to the public API's; if this MediaPipe build lacks any of these internals,
    `of` returns None and the public API is used.
    """

    def __init__(self, lib, result_type, stride: int) -> None:
        from mediapipe.tasks.python.core.mediapipe_c_utils import handle_status

        self.detect_image = lib.MpFaceLandmarkerDetectImage
        self.close_result = lib.MpFaceLandmarkerCloseResult
        self.free_error = lib.MpErrorFree
        self.handle_status = handle_status
        self.result_type = result_type
        self.stride = stride  # bytes per landmark; x, y, z are its first three floats
        self.blendshape_index: dict[str, int] = {}

    @classmethod
    def of(cls, task) -> _DirectCalls | None:
        try:
            from mediapipe.tasks.python.components.containers.landmark_c import MpNormalizedLandmarkC
            from mediapipe.tasks.python.vision.face_landmarker import MpFaceLandmarkerResultC

            lib = task._lib._lib  # the ctypes.CDLL behind the SerialDispatcher
            layout = (MpNormalizedLandmarkC.x.offset, MpNormalizedLandmarkC.y.offset, MpNormalizedLandmarkC.z.offset)
            stride = ctypes.sizeof(MpNormalizedLandmarkC)
            if layout != (0, 4, 8) or stride % 4 or not isinstance(task._handle, (int, ctypes.c_void_p)):
                raise TypeError(f"unexpected landmark layout {layout}, {stride} bytes")
            return cls(lib, MpFaceLandmarkerResultC, stride)
        except (AttributeError, ImportError, TypeError) as error:
            log.warning("MediaPipe internals changed (%s); using its slower public API", error)
            return None

    def detect(self, task, image) -> list[FaceLandmarks]:
        result = self.result_type()
        self.run_graph(task, image, result)
        try:
            return [self._face(result, index) for index in range(result.face_landmarks_count)]
        finally:
            self.close_result(ctypes.byref(result))

    def run_graph(self, task, image, result) -> None:
        """The graph alone, its result left in MediaPipe's C structure (`close_result` frees it)."""
        error = ctypes.c_char_p()
        status = self.detect_image(task._handle, image._image_ptr, None, ctypes.byref(result), ctypes.byref(error))
        try:
            self.handle_status(status, error)
        finally:
            if error.value is not None:
                self.free_error(error)

    def _face(self, result, index: int) -> FaceLandmarks:
        landmarks = result.face_landmarks[index]
        count = landmarks.landmarks_count
        if count:
            raw = (ctypes.c_char * (count * self.stride)).from_address(ctypes.addressof(landmarks.landmarks.contents))
            points = np.frombuffer(raw, dtype=np.float32).reshape(count, self.stride // 4)[:, :3].copy()
        else:
            points = np.zeros((0, 3), dtype=np.float32)
        wanted = self._blendshapes(result.face_blendshapes[index]) if index < result.face_blendshapes_count else {}
        matrix = (
            np.asarray(result.facial_transformation_matrixes[index].to_numpy(), dtype=np.float32)
            if index < result.facial_transformation_matrixes_count
            else np.eye(4, dtype=np.float32)
        )
        return FaceLandmarks(points=points, blendshapes=wanted, matrix=matrix)

    def _blendshapes(self, categories) -> dict[str, float]:
        """The wanted scores, read at the positions the model put them last time (checked by name)."""
        found = {}
        for name, position in self.blendshape_index.items():
            if position < categories.categories_count:
                category = categories.categories[position]
                if category.category_name == name.encode():
                    found[name] = category.score
        if len(found) == len(BLENDSHAPES):
            return found
        self.blendshape_index.clear()
        found.clear()
        for position in range(categories.categories_count):
            category = categories.categories[position]
            name = category.category_name.decode() if category.category_name else ""
            if name in BLENDSHAPES:
                self.blendshape_index[name] = position
                found[name] = category.score
        return found


def synthetic_face(width: int = 640, height: int = 480) -> np.ndarray:
    """A drawn face (RGB) that the landmarker finds: a built-in frame to time it on, no real person's."""
    import cv2

    image = np.full((height, width, 3), (90, 110, 120), np.uint8)
    cx, cy = width // 2, height // 2
    cv2.ellipse(image, (cx, cy), (95, 125), 0, 0, 360, (224, 189, 160), -1)
    for dx in (-38, 38):
        cv2.ellipse(image, (cx + dx, cy - 25), (20, 10), 0, 0, 360, (250, 250, 250), -1)
        cv2.circle(image, (cx + dx, cy - 25), 7, (60, 40, 30), -1)
        cv2.line(image, (cx + dx - 22, cy - 48), (cx + dx + 22, cy - 50), (70, 50, 40), 5)
    cv2.line(image, (cx, cy - 15), (cx - 8, cy + 25), (190, 150, 125), 4)
    cv2.ellipse(image, (cx, cy + 55), (32, 10), 0, 0, 360, (170, 80, 80), -1)
    return cv2.GaussianBlur(image, (5, 5), 0)


def time_on_synthetic_face(landmarker: FaceLandmarker | LandmarkerPool, frames: int = 24) -> float:
    """Milliseconds per frame on the synthetic face (blocking). The lower quartile: a busy moment of the
    machine while it is measured must not make the estimate poor."""
    import time

    image = synthetic_face()
    timings = []
    for _ in range(frames):
        started = time.perf_counter()
        landmarker.get(image)
        timings.append((time.perf_counter() - started) * 1000)
    return sorted(timings)[len(timings) // 4]
