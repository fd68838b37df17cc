"""Which model files the service runs, named by their SHA-256: said at start-up and signed into receipts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .files import sha256_of

ROLES = ("landmarker", "detector", "embedder", "pad", "ocr")
SHORT_HASH = 12


@dataclass(frozen=True)
class ModelIdentity:
    role: str  # one of ROLES
    name: str  # the file's name
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "name": self.name, "sha256": self.sha256}


def identify(role: str, path: Path, sha256: str | None = None) -> ModelIdentity:
    """A file's identity; `sha256` when it was just verified against that pinned value."""
    return ModelIdentity(role, path.name, sha256 or sha256_of(path))


def summary(models: Sequence[ModelIdentity]) -> str:
    """One line: every role with its files and short hashes, and the roles that are not loaded."""
    parts = []
    for role in ROLES:
        files = [f"{m.name} {m.sha256[:SHORT_HASH]}" for m in models if m.role == role]
        parts.append(f"{role.upper() if role in ('pad', 'ocr') else role} {' + '.join(files) if files else 'NOT LOADED'}")
    return "models: " + "; ".join(parts)
