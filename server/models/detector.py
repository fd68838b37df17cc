"""SCRFD face detector on ONNX Runtime (CPU).

Follows insightface's model_zoo SCRFD (MIT licence, insightface 2.1): the same letterbox, input
normalisation, anchor centres, distance decoding, score threshold and NMS, so it gives insightface's
boxes and keypoints (tests/test_face_models.py checks them against recorded reference figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

INPUT_MEAN = 127.5
INPUT_STD = 128.0
NMS_THRESHOLD = 0.4


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

    def shifted(self, dx: float, dy: float, scale: float = 1.0) -> DetectedFace:
        """Coordinates mapped back from a padded or resized copy of an image."""
        offset = np.array([dx, dy], dtype=np.float32)
        return DetectedFace(
            box=(self.box.reshape(2, 2) * scale + offset).reshape(4),
            kps=self.kps * scale + offset,
            score=self.score,
        )


@dataclass(frozen=True)
class HeadLayout:
    """How an SCRFD export arranges its outputs: per stride a score, a box and (with kps) a keypoint head."""

    strides: tuple[int, ...]
    anchors: int
    use_kps: bool

    @classmethod
    def of(cls, output_count: int) -> HeadLayout | None:
        layouts = {
            6: cls((8, 16, 32), 2, False),
            9: cls((8, 16, 32), 2, True),
            10: cls((8, 16, 32, 64, 128), 1, False),
            15: cls((8, 16, 32, 64, 128), 1, True),
        }
        return layouts.get(output_count)


def cpu_session(model_file: Path, threads: int = 0) -> ort.InferenceSession:
    """An ONNX Runtime session on the CPU; `threads` > 0 runs each call on that many threads (0: ONNX
    Runtime's default, one per physical core, which spin while they wait for work)."""
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])


def letterbox(bgr: np.ndarray, input_size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """The image resized to fit `input_size` (width, height), top-left aligned on black; and the scale used."""
    width, height = input_size
    image_ratio = float(bgr.shape[0]) / bgr.shape[1]
    if image_ratio > float(height) / width:
        new_height = height
        new_width = int(new_height / image_ratio)
    else:
        new_width = width
        new_height = int(new_width * image_ratio)
    scale = float(new_height) / bgr.shape[0]
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    canvas[:new_height, :new_width, :] = cv2.resize(bgr, (new_width, new_height))
    return canvas, scale


def anchor_centers(height: int, width: int, stride: int, anchors: int) -> np.ndarray:
    """(height * width * anchors, 2) x, y centres in input pixels, row by row, each repeated per anchor."""
    centers = (np.stack(list(np.mgrid[:height, :width][::-1]), axis=-1).astype(np.float32) * stride).reshape(-1, 2)
    if anchors > 1:
        centers = np.stack([centers] * anchors, axis=1).reshape(-1, 2)
    return centers


def distance2bbox(points: np.ndarray, distance: np.ndarray) -> np.ndarray:
    return np.stack(
        [
            points[:, 0] - distance[:, 0],
            points[:, 1] - distance[:, 1],
            points[:, 0] + distance[:, 2],
            points[:, 1] + distance[:, 3],
        ],
        axis=-1,
    )


def distance2kps(points: np.ndarray, distance: np.ndarray) -> np.ndarray:
    coords = []
    for i in range(0, distance.shape[1], 2):
        coords.append(points[:, 0] + distance[:, i])
        coords.append(points[:, 1] + distance[:, i + 1])
    return np.stack(coords, axis=-1)


def nms(dets: np.ndarray, threshold: float = NMS_THRESHOLD) -> list[int]:
    """Greedy non-maximum suppression on (n, 5) rows of x0, y0, x1, y1, score (insightface's +1 pixel areas)."""
    x1, y1, x2, y2, scores = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3], dets[:, 4]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x2[i], x2[order[1:]]) - np.maximum(x1[i], x1[order[1:]]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[order[1:]]) - np.maximum(y1[i], y1[order[1:]]) + 1)
        inter = w * h
        overlap = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[np.where(overlap <= threshold)[0] + 1]
    return keep


class FaceDetector:
    """SCRFD: prepare() opens the ONNX session, get() returns the faces in a BGR image."""

    def __init__(self, model_file: Path, session: ort.InferenceSession | None = None) -> None:
        self.model_file = Path(model_file)
        self._session = session
        self.det_thresh = 0.5
        self._layout: HeadLayout | None = None
        self._centers: dict[tuple[int, int, int], np.ndarray] = {}

    def prepare(self, det_thresh: float = 0.5) -> FaceDetector:
        if self._session is None:
            self._session = cpu_session(self.model_file)
        outputs = self._session.get_outputs()
        self._layout = HeadLayout.of(len(outputs))
        if self._layout is None:
            raise ValueError(f"{self.model_file.name} is not an SCRFD detector ({len(outputs)} outputs)")
        self._batched = len(outputs[0].shape) == 3
        self._input_name = self._session.get_inputs()[0].name
        self._output_names = [o.name for o in outputs]
        self.det_thresh = det_thresh
        return self

    def get(self, bgr: np.ndarray, input_size: tuple[int, int] = (640, 640)) -> list[DetectedFace]:
        canvas, scale = letterbox(bgr, input_size)
        scores, boxes, kpss = self._candidates(canvas)
        if scores.size == 0:
            return []
        order = np.argsort(-scores.ravel(), kind="stable")
        dets = np.hstack((boxes / scale, scores)).astype(np.float32, copy=False)[order]
        keep = nms(dets)
        kps_all = (kpss / scale)[order] if kpss is not None else None
        faces = []
        for i in keep:
            kps = kps_all[i] if kps_all is not None else np.zeros((5, 2), dtype=np.float32)
            faces.append(DetectedFace(box=dets[i, :4].astype(np.float32), kps=kps.astype(np.float32), score=float(dets[i, 4])))
        return faces

    def _candidates(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Scores (n, 1), boxes (n, 4) and keypoints (n, 5, 2) above the threshold, in canvas pixels."""
        if self._session is None or self._layout is None:
            raise RuntimeError("FaceDetector.prepare() was not called")
        layout = self._layout
        size = (canvas.shape[1], canvas.shape[0])
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / INPUT_STD, size, (INPUT_MEAN, INPUT_MEAN, INPUT_MEAN), swapRB=True)
        outs = self._session.run(self._output_names, {self._input_name: np.ascontiguousarray(blob, dtype=np.float32)})
        if self._batched:
            outs = [out[0] for out in outs]
        count = len(layout.strides)
        scores_list, boxes_list, kps_list = [], [], []
        for index, stride in enumerate(layout.strides):
            scores = outs[index]
            centers = self._anchor_centers(blob.shape[2] // stride, blob.shape[3] // stride, stride)
            keep = np.where(scores >= self.det_thresh)[0]
            scores_list.append(scores[keep])
            boxes_list.append(distance2bbox(centers, outs[index + count] * stride)[keep])
            if layout.use_kps:
                kps = distance2kps(centers, outs[index + 2 * count] * stride)
                kps_list.append(kps.reshape((kps.shape[0], -1, 2))[keep])
        scores = np.vstack(scores_list)
        return scores, np.vstack(boxes_list), np.vstack(kps_list) if layout.use_kps else None

    def _anchor_centers(self, height: int, width: int, stride: int) -> np.ndarray:
        key = (height, width, stride)
        if key not in self._centers:
            assert self._layout is not None
            self._centers[key] = anchor_centers(height, width, stride, self._layout.anchors)
        return self._centers[key]
