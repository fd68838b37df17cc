"""SCRFD face detector (InsightFace model class, ONNX Runtime on the CPU)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class DetectedFace:
    box: np.ndarray  # x0, y0, x1, y1 in pixels
    kps: np.ndarray  # (5, 2): eyes, nose tip, mouth corners
    score: float

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return self.width * self.height

    def shifted(self, dx: float, dy: float, scale: float = 1.0) -> "DetectedFace":
        """Coordinates mapped back from a padded or resized copy of an image."""
        offset = np.array([dx, dy], dtype=np.float32)
        return DetectedFace(
            box=(self.box.reshape(2, 2) * scale + offset).reshape(4),
            kps=self.kps * scale + offset,
            score=self.score,
        )


class FaceDetector:
    def __init__(self, model_file: Path, model=None) -> None:
        self.model_file = Path(model_file)
        self._model = model

    def prepare(self, det_thresh: float = 0.5) -> "FaceDetector":
        if self._model is None:
            from insightface.model_zoo import model_zoo

            self._model = model_zoo.get_model(str(self.model_file), providers=["CPUExecutionProvider"])
        self._model.prepare(-1, det_thresh=det_thresh, input_size=(640, 640))
        return self

    def get(self, bgr: np.ndarray, input_size: tuple[int, int] = (640, 640)) -> list[DetectedFace]:
        boxes, kpss = self._model.detect(bgr, input_size=input_size)
        faces = []
        for i in range(boxes.shape[0]):
            kps = kpss[i] if kpss is not None else np.zeros((5, 2), dtype=np.float32)
            faces.append(DetectedFace(box=boxes[i, :4].astype(np.float32), kps=kps.astype(np.float32), score=float(boxes[i, 4])))
        return faces
