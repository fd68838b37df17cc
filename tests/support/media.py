"""Where the shared test media lives. Never copied into the repository: read in place, skipped if absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MEDIA = Path(os.environ.get("REALNAME_TEST_MEDIA", ROOT.parent / "shared" / "media")).resolve()
PHOTOS = MEDIA / "photos"
VIDEOS = MEDIA / "videos"


def require_media() -> None:
    if not MEDIA.is_dir():
        pytest.skip(f"test media not found at {MEDIA} (set REALNAME_TEST_MEDIA)")


def _media_file(path: Path) -> Path:
    require_media()
    if not path.is_file():
        pytest.skip(f"{path} is not in the test media")
    return path


def photo(relative: str) -> Path:
    return _media_file(PHOTOS / relative)


def video(name: str) -> Path:
    return _media_file(VIDEOS / name)


PAD_MODELS = Path(os.environ.get("REALNAME_TEST_PAD_MODELS", MEDIA.parent / "models" / "pad")).resolve()


def pad_models_present() -> bool:
    return (PAD_MODELS / "MiniFASNetV2.onnx").is_file()


def pad_model_dir() -> Path:
    """The passive anti-spoofing models next to the media (../shared/models/pad); never in the repository."""
    if not pad_models_present():
        pytest.skip(f"PAD models not found at {PAD_MODELS} (set REALNAME_TEST_PAD_MODELS)")
    return PAD_MODELS


def identity_photos() -> list[Path]:
    """Every photo in a folder named after a person (folders starting with '_' hold no identity)."""
    if not PHOTOS.is_dir():
        return []
    return sorted(p for p in PHOTOS.glob("*/*") if p.is_file() and not p.parent.name.startswith("_"))
