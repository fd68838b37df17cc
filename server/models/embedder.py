"""ArcFace face embedder on ONNX Runtime (CPU), with the five-point alignment it was trained on.

Follows insightface's model_zoo ArcFaceONNX and utils.face_align.norm_crop (MIT licence, insightface
2.1): Umeyama similarity to the arcface 5-point template, cv2.warpAffine with a black border, and
blobFromImages with swapRB and the model's input mean and std.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import onnxruntime as ort

from .detector import cpu_session

ARCFACE_DST = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(3, 3) least-squares similarity transform (rotation, uniform scale, translation) taking src to dst.

    Umeyama, PAMI 1991, as scikit-image's SimilarityTransform.estimate computes it (same dtypes)."""
    dim = src.shape[1]
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_demean, dst_demean = src - src_mean, dst - dst_mean
    a = dst_demean.T @ src_demean / src.shape[0]
    d = np.ones((dim,), dtype=np.float64)
    if np.linalg.det(a) < 0:
        d[dim - 1] = -1
    t = np.eye(dim + 1, dtype=np.float64)
    u, s, v = np.linalg.svd(a)
    rank = np.count_nonzero(s > s.max() * max(a.shape) * np.finfo(float).eps)
    if rank == 0:
        return np.nan * t
    if rank == dim - 1 and np.linalg.det(u) * np.linalg.det(v) <= 0:
        flipped = d.copy()
        flipped[dim - 1] = -1
        t[:dim, :dim] = u @ np.diag(flipped) @ v
    elif rank == dim - 1:
        t[:dim, :dim] = u @ v
    else:
        t[:dim, :dim] = u @ np.diag(d) @ v
    scale = 1.0 / src_demean.var(axis=0).sum() * (s @ d)
    t[:dim, dim] = dst_mean - scale * (t[:dim, :dim] @ src_mean.T)
    t[:dim, :dim] *= scale
    return t


def estimate_norm(kps: np.ndarray, image_size: int = 112) -> np.ndarray:
    """(2, 3) affine matrix taking the five keypoints to the arcface template scaled to `image_size`."""
    if kps.shape != (5, 2) or (image_size % 112 and image_size % 128):
        raise ValueError(f"need (5, 2) keypoints and a size multiple of 112 or 128, got {kps.shape}, {image_size}")
    if image_size % 112 == 0:
        ratio, diff_x = image_size / 112.0, 0.0
    else:
        ratio = image_size / 128.0
        diff_x = 8.0 * ratio
    dst = ARCFACE_DST * ratio
    dst[:, 0] += diff_x
    return umeyama(kps, dst)[0:2, :]


def norm_crop(bgr: np.ndarray, kps: np.ndarray, image_size: int = 112) -> np.ndarray:
    return cv2.warpAffine(bgr, estimate_norm(kps, image_size), (image_size, image_size), borderValue=0.0)


def input_normalisation(model_file: Path) -> tuple[float, float]:
    """(mean, std) the model expects: exports from MXNet subtract and scale inside the graph (a Sub and a
    Mul among the first eight nodes), so they take raw pixels; the others take (pixel - 127.5) / 127.5."""
    names = onnx_node_names(model_file, limit=8)
    has_sub = any(n.startswith(("Sub", "_minus")) for n in names)
    has_mul = any(n.startswith(("Mul", "_mul")) for n in names)
    return (0.0, 1.0) if has_sub and has_mul else (127.5, 127.5)


def onnx_node_names(model_file: Path, limit: int) -> list[str]:
    """Names of the first `limit` nodes of an ONNX graph, read from the protobuf wire format
    (ModelProto.graph = 7, GraphProto.node = 1, NodeProto.name = 3) without the onnx package and
    without reading the weights: other fields are skipped by seeking."""
    names: list[str] = []
    with open(model_file, "rb") as stream:
        size = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        for number, length in _fields(stream, size):
            if number != 7:
                stream.seek(length, io.SEEK_CUR)
                continue
            for inner, node_length in _fields(stream, stream.tell() + length):
                if inner != 1 or len(names) >= limit:
                    stream.seek(node_length, io.SEEK_CUR)
                    continue
                node = io.BytesIO(stream.read(node_length))
                name = ""
                for field, field_length in _fields(node, node_length):
                    value = node.read(field_length)
                    if field == 3:
                        name = value.decode("utf-8", "replace")
                names.append(name)
            break
    return names


def _varint(stream: BinaryIO) -> int:
    value = shift = 0
    while True:
        byte = stream.read(1)
        if not byte:
            raise ValueError("truncated protobuf")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7


def _fields(stream: BinaryIO, end: int) -> Iterator[tuple[int, int]]:
    """(field number, length) of each length-delimited field up to `end`, the stream left at its value
    (the caller reads or skips it); scalar fields are skipped here."""
    while stream.tell() < end:
        key = _varint(stream)
        wire = key & 7
        if wire == 0:
            _varint(stream)
        elif wire in (1, 5):
            stream.seek(8 if wire == 1 else 4, io.SEEK_CUR)
        elif wire == 2:
            yield key >> 3, _varint(stream)
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


class FaceEmbedder:
    """ArcFace: prepare() opens the ONNX session, get() returns a unit-length embedding."""

    def __init__(self, model_file: Path, session: ort.InferenceSession | None = None) -> None:
        self.model_file = Path(model_file)
        self._session = session
        self._size = 112

    def prepare(self) -> FaceEmbedder:
        if self._session is None:
            self._session = cpu_session(self.model_file)
        model_input = self._session.get_inputs()[0]
        self._input_name = model_input.name
        self._size = int(model_input.shape[3])
        self._mean, self._std = input_normalisation(self.model_file)
        return self

    @property
    def input_size(self) -> int:
        return self._size

    def aligned(self, bgr: np.ndarray, kps: np.ndarray) -> np.ndarray:
        return norm_crop(bgr, kps, image_size=self.input_size)

    def get(self, bgr: np.ndarray, kps: np.ndarray) -> np.ndarray:
        """Unit-length embedding of the face whose five keypoints are `kps`."""
        return self.get_aligned(self.aligned(bgr, kps))

    def get_aligned(self, aligned: np.ndarray) -> np.ndarray:
        if self._session is None:
            raise RuntimeError("FaceEmbedder.prepare() was not called")
        size = (self._size, self._size)
        blob = cv2.dnn.blobFromImages([aligned], 1.0 / self._std, size, (self._mean, self._mean, self._mean), swapRB=True)
        feature = self._session.run(None, {self._input_name: np.ascontiguousarray(blob, dtype=np.float32)})[0]
        feature = feature.reshape(-1).astype(np.float32)
        return feature / max(float(np.linalg.norm(feature)), 1e-12)
