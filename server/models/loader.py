"""Picks the model files: the pinned wheels by default, or folders a deployer points at."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import files
from .detector import FaceDetector
from .embedder import FaceEmbedder
from .files import ModelFileError
from .landmarker import FaceLandmarker


def landmarker_file(configured: str = "") -> Path:
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ModelFileError(f"landmarker model {path} does not exist")
        return path
    return files.LANDMARKER.locate()


def new_landmarker(model_file: Path) -> FaceLandmarker:
    return FaceLandmarker(model_file).prepare()


@dataclass
class FaceModels:
    detector: FaceDetector
    embedder: FaceEmbedder
    source: str  # the folder or wheel the files came from
    files: dict[str, str]  # role -> file name, for calibration records


def load_face_models(model_dir: str = "") -> FaceModels:
    if not model_dir:
        detector_file = files.DETECTOR.locate()
        recognizer_file = files.RECOGNIZER.locate()
        detector = FaceDetector(detector_file).prepare()
        embedder = FaceEmbedder(recognizer_file).prepare()
        source = f"{files.DETECTOR.distribution} (pinned wheel)"
    else:
        detector, embedder = _from_folder(Path(model_dir).expanduser())
        source = str(model_dir)
    return FaceModels(
        detector=detector,
        embedder=embedder,
        source=source,
        files={"detector": detector.model_file.name, "recognizer": embedder.model_file.name},
    )


def _from_folder(folder: Path) -> tuple[FaceDetector, FaceEmbedder]:
    """Like insightface's FaceAnalysis: route each .onnx by its shape and keep a detector and a recognizer."""
    from insightface.model_zoo import model_zoo

    if not folder.is_dir():
        raise ModelFileError(f"face model folder {folder} does not exist")
    detector = embedder = None
    for onnx_file in sorted(folder.glob("*.onnx")):
        model = model_zoo.get_model(str(onnx_file), providers=["CPUExecutionProvider"])
        task = getattr(model, "taskname", None)
        if task == "detection" and detector is None:
            detector = FaceDetector(onnx_file, model=model).prepare()
        elif task == "recognition" and embedder is None:
            embedder = FaceEmbedder(onnx_file, model=model).prepare()
    if detector is None or embedder is None:
        raise ModelFileError(f"{folder} needs an SCRFD detector and an ArcFace recognizer (.onnx)")
    return detector, embedder
