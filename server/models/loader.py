"""Picks the model files: the pinned wheels by default, or folders a deployer points at."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import files
from .detector import FaceDetector, cpu_session
from .embedder import FaceEmbedder
from .files import ModelFileError
from .landmarker import FaceLandmarker


def landmarker_file(configured: str = "", models_dir: str = "") -> Path:
    """The configured file, else the one `python -m server models install` put in the models folder."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ModelFileError(f"landmarker model {path} does not exist")
        return path
    return files.LANDMARKER.locate([files.models_dir(models_dir)])


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
    """Like insightface's FaceAnalysis: route each .onnx by its shape and keep the first detector and recognizer."""
    if not folder.is_dir():
        raise ModelFileError(f"face model folder {folder} does not exist")
    detector = embedder = None
    for onnx_file in sorted(folder.glob("*.onnx")):
        model = route(onnx_file)
        if isinstance(model, FaceDetector) and detector is None:
            detector = model.prepare()
        elif isinstance(model, FaceEmbedder) and embedder is None:
            embedder = model.prepare()
    if detector is None or embedder is None:
        raise ModelFileError(f"{folder} needs an SCRFD detector and an ArcFace recognizer (.onnx)")
    return detector, embedder


def route(onnx_file: Path) -> FaceDetector | FaceEmbedder | None:
    """Which model an .onnx file is, by its inputs and outputs, as insightface's model_zoo ModelRouter decides:
    five or more outputs is SCRFD; a square input of 112 px or more (a multiple of 16) is ArcFace; 192 px
    (landmarks), 96 px (gender/age) and two-input 128 px (face swap) models are not used here."""
    session = cpu_session(onnx_file)
    inputs = session.get_inputs()
    shape = inputs[0].shape
    if len(session.get_outputs()) >= 5:
        return FaceDetector(onnx_file, session=session)
    height, width = shape[2], shape[3]
    if not (isinstance(height, int) and isinstance(width, int)) or height in (192, 96) or (len(inputs) == 2 and height == 128):
        return None
    if height == width and height >= 112 and height % 16 == 0:
        return FaceEmbedder(onnx_file, session=session)
    return None
