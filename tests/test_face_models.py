"""Our SCRFD and ArcFace runners reproduce insightface 2.1's outputs.

tests/fixtures/insightface_reference.json holds what insightface 2.1 itself returned on shared photos
(boxes, keypoints and scores rounded to 0.01 / 1e-4, and pair similarities rounded to 1e-4; no
embeddings). It was written while insightface was installed, by running both implementations side by
side: they were identical (box, keypoint and score differences 0, pair similarity differences 0).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from server.matching.images import decode_image
from server.models.detector import anchor_centers, nms
from server.models.embedder import ARCFACE_DST, estimate_norm, input_normalisation, norm_crop, onnx_node_names
from server.models.loader import load_face_models, route
from tests.support.media import photo

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "insightface_reference.json").read_text())


@pytest.fixture(scope="module")
def face_models():
    return load_face_models()


def load(relative: str, variant: str = "full") -> np.ndarray:
    image = decode_image(photo(relative).read_bytes(), max_bytes=1 << 30, max_pixels=200_000_000)
    if variant in ("small", "gray"):  # a 150 px wide copy, as a small printed portrait
        h, w = image.shape[:2]
        image = cv2.resize(image, (150, max(1, round(h * 150 / w))), interpolation=cv2.INTER_AREA)
    if variant == "gray":
        image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return image


@pytest.mark.parametrize("case", REFERENCE["detections"], ids=lambda c: f"{c['photo']}-{c['variant']}-{c['input_size']}")
def test_detections_match_insightface(face_models, case):
    size = case["input_size"]
    faces = face_models.detector.get(load(case["photo"], case["variant"]), input_size=(size, size))
    assert len(faces) == len(case["faces"])
    for face, expected in zip(faces, case["faces"], strict=True):
        np.testing.assert_allclose(face.box, expected["box"], atol=0.011)
        np.testing.assert_allclose(face.kps, expected["kps"], atol=0.011)
        assert face.score == pytest.approx(expected["score"], abs=1.1e-4)


@pytest.mark.parametrize("pair", REFERENCE["pairs"], ids=lambda p: f"{p['file_a']}-{p['file_b']}")
def test_pair_similarity_matches_insightface(face_models, pair):
    def embedding(relative: str) -> np.ndarray:
        image = load(relative)
        face = max(face_models.detector.get(image), key=lambda f: f.area)
        return face_models.embedder.get(image, face.kps)

    assert float(embedding(pair["file_a"]) @ embedding(pair["file_b"])) == pytest.approx(pair["similarity"], abs=1.1e-4)


def test_the_template_points_align_onto_themselves():
    matrix = estimate_norm(ARCFACE_DST.copy())
    np.testing.assert_allclose(matrix, [[1, 0, 0], [0, 1, 0]], atol=1e-4)


def test_alignment_undoes_a_rotation_scale_and_shift():
    angle = np.deg2rad(20)
    rotation = 1.7 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=np.float32)
    kps = (ARCFACE_DST @ rotation.T + np.array([300, 150], dtype=np.float32)).astype(np.float32)
    image = np.zeros((600, 600, 3), dtype=np.uint8)
    for x, y in kps:
        cv2.circle(image, (round(float(x)), round(float(y))), 3, (255, 255, 255), -1)
    crop = norm_crop(image, kps)
    assert crop.shape == (112, 112, 3)
    for x, y in ARCFACE_DST:
        assert crop[round(float(y)), round(float(x))].min() > 0


def test_nms_keeps_the_best_of_overlapping_boxes():
    dets = np.array([[0, 0, 100, 100, 0.9], [5, 5, 105, 105, 0.95], [200, 200, 260, 260, 0.6]], dtype=np.float32)
    assert nms(dets) == [1, 2]


def test_anchor_centres_repeat_per_anchor_row_by_row():
    centers = anchor_centers(2, 3, 8, 2)
    assert centers.tolist()[:4] == [[0, 0], [0, 0], [8, 0], [8, 0]]
    assert centers.tolist()[6] == [0, 8]


def _field(number: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def _onnx_like(tmp_path: Path, names: list[str]) -> Path:
    """A ModelProto with an ir_version, a producer name and a graph of named nodes (wire format)."""
    nodes = b"".join(_field(1, _field(3, name.encode()) + _field(4, b"Conv")) for name in names)
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07" + _field(2, b"pytorch") + _field(7, nodes + _field(2, b"graph")))
    return path


def test_node_names_are_read_without_the_onnx_package(tmp_path):
    assert onnx_node_names(_onnx_like(tmp_path, ["Conv_0", "PRelu_1", "Conv_2"]), limit=2) == ["Conv_0", "PRelu_1"]


def test_mxnet_exports_take_raw_pixels_and_others_normalised_ones(tmp_path):
    assert input_normalisation(_onnx_like(tmp_path, ["_minusscalar0", "_mulscalar0", "conv0"])) == (0.0, 1.0)
    assert input_normalisation(_onnx_like(tmp_path, ["Conv_0", "PRelu_1"])) == (127.5, 127.5)


def test_a_folder_is_routed_by_model_shape(face_models, tmp_path):
    folder = tmp_path / "pack"
    folder.mkdir()
    for model in (face_models.detector, face_models.embedder):
        (folder / model.model_file.name).symlink_to(model.model_file)
    loaded = load_face_models(str(folder))
    assert loaded.files == {"detector": "scrfd_500m_bnkps.onnx", "recognizer": "w600k_mbf.onnx"}
    assert route(face_models.detector.model_file).__class__.__name__ == "FaceDetector"
    assert loaded.embedder.input_size == 112
