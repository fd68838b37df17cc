"""The PAD thresholds in use: the calibration file shipped with the code, or one a deployer measured."""

from __future__ import annotations

import json
from pathlib import Path

from .pad import PadThresholds

DEFAULT_FILE = Path(__file__).parent / "calibration" / "minifasnet-ensemble.json"


class PadCalibrationError(ValueError):
    pass


def load_thresholds(path: str | Path = "") -> PadThresholds:
    """Thresholds from a calibration JSON ({"thresholds": {"attack": .., "review": .., "flat_below": .., "noisy_above": .., "noisy_review": .., "detail_below": ..}, ...})."""
    file = Path(path).expanduser() if path else DEFAULT_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        limits = data["thresholds"]
        return PadThresholds(attack=float(limits["attack"]), review=float(limits["review"]), source=file.name,
                             flat_below=float(limits.get("flat_below", 0.0)), noisy_above=float(limits.get("noisy_above", 0.0)),
                             noisy_review=float(limits.get("noisy_review", 0.0)), detail_below=float(limits.get("detail_below", 0.0)))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PadCalibrationError(f"cannot use PAD calibration {file}: {error}") from error
