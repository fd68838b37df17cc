"""ArcFace face embedder (InsightFace model class, ONNX Runtime on the CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class FaceEmbedder:
    def __init__(self, model_file: Path, model=None) -> None:
        self.model_file = Path(model_file)
        self._model = model

    def prepare(self) -> "FaceEmbedder":
        if self._model is None:
            from insightface.model_zoo import model_zoo

            self._model = model_zoo.get_model(str(self.model_file), providers=["CPUExecutionProvider"])
        self._model.prepare(-1)
        return self

    @property
    def input_size(self) -> int:
        return int(self._model.input_size[0])

    def aligned(self, bgr: np.ndarray, kps: np.ndarray) -> np.ndarray:
        from insightface.utils import face_align

        return face_align.norm_crop(bgr, landmark=kps, image_size=self.input_size)

    def get(self, bgr: np.ndarray, kps: np.ndarray) -> np.ndarray:
        """Unit-length embedding of the face whose five keypoints are `kps`."""
        return self.get_aligned(self.aligned(bgr, kps))

    def get_aligned(self, aligned: np.ndarray) -> np.ndarray:
        feature = self._model.get_feat(aligned).reshape(-1).astype(np.float32)
        return feature / max(float(np.linalg.norm(feature)), 1e-12)
