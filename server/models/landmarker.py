"""MediaPipe Face Landmarker (Tasks API, VIDEO mode): 478 landmarks, blendshapes and head pose matrix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


class FaceLandmarker:
    """One per video stream: VIDEO mode tracks the face from frame to frame and needs rising timestamps."""

    def __init__(self, model_path: Path, max_faces: int = 2) -> None:
        self.model_path = Path(model_path)
        self.max_faces = max_faces
        self._task = None
        self._last_ms = -1

    def prepare(self) -> "FaceLandmarker":
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=self.model_path.read_bytes()),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=self.max_faces,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._task = vision.FaceLandmarker.create_from_options(options)
        return self

    def get(self, rgb: np.ndarray, timestamp_ms: int) -> list[FaceLandmarks]:
        import mediapipe as mp

        if self._task is None:
            raise RuntimeError("FaceLandmarker.prepare() was not called")
        # VIDEO mode rejects timestamps that do not increase.
        timestamp_ms = max(int(timestamp_ms), self._last_ms + 1)
        self._last_ms = timestamp_ms
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._task.detect_for_video(image, timestamp_ms)
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
        if self._task is not None:
            self._task.close()
            self._task = None
