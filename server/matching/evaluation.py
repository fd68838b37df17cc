"""Measuring the face matcher on a list of labelled pairs, and turning the measurement into a calibration."""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

import numpy as np

from .calibration import Calibration, OperatingPoint
from .faces import FaceError
from .images import ImageError, decode_image
from .matcher import FaceMatcher, similarity

FAILED = -1.0  # score of a pair with an image where no usable face was found
REPORTED_FARS = (1e-2, 1e-3)
CALIBRATION_FARS = (1e-1, 5e-2, 2e-2, 1e-2, 5e-3, 2e-3, 1e-3, 5e-4, 2e-4, 1e-4, 1e-5, 1e-6)


class PairsError(ValueError):
    pass


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool


@dataclass
class Evaluation:
    genuine: np.ndarray  # scores, FAILED where a face could not be enrolled
    impostor: np.ndarray
    failures: dict[str, str] = field(default_factory=dict)  # image -> error code
    image_ms: list[float] = field(default_factory=list)

    @property
    def failed_genuine(self) -> int:
        return int(np.sum(self.genuine == FAILED))

    @property
    def failed_impostor(self) -> int:
        return int(np.sum(self.impostor == FAILED))

    def far(self, threshold: float) -> float:
        return float(np.mean(self.impostor >= threshold)) if self.impostor.size else 0.0

    def tar(self, threshold: float) -> float:
        return float(np.mean(self.genuine >= threshold)) if self.genuine.size else 0.0

    def threshold_at_far(self, far: float) -> float:
        """The lowest threshold at which at most `far` of impostor pairs are accepted."""
        scores = np.sort(self.impostor)[::-1]
        allowed = int(np.floor(far * scores.size + 1e-9))
        if allowed >= scores.size:
            return float(scores[-1])
        return float(np.nextafter(np.float32(scores[allowed]), np.float32(np.inf)))

    def eer(self) -> tuple[float, float]:
        """(equal error rate, threshold there)."""
        candidates = np.unique(np.concatenate([self.genuine, self.impostor]))
        best = (1.0, 0.0)
        gap = 2.0
        for t in candidates:
            frr, far = 1.0 - self.tar(t), self.far(t)
            if abs(frr - far) < gap:
                gap, best = abs(frr - far), ((frr + far) / 2.0, float(t))
        return best

    def calibration(self, model: str, model_files: dict, notes: str = "") -> Calibration:
        n = self.impostor.size
        points = []
        for far in CALIBRATION_FARS:
            if far * n < 1.0:  # not measurable on this many impostor pairs
                continue
            threshold = self.threshold_at_far(far)
            points.append(OperatingPoint(far=far, threshold=round(threshold, 4), tar=round(self.tar(threshold), 4)))
        return Calibration(
            model=model,
            points=tuple(points),
            genuine_pairs=int(self.genuine.size),
            impostor_pairs=int(n),
            notes=notes,
            model_files=model_files,
        )

    def report(self, matcher: FaceMatcher | None = None) -> dict:
        eer, eer_threshold = self.eer()
        data = {
            "genuine_pairs": int(self.genuine.size),
            "impostor_pairs": int(self.impostor.size),
            "failed_images": len(self.failures),
            "failures": self.failures,
            "failed_genuine_pairs": self.failed_genuine,
            "failed_impostor_pairs": self.failed_impostor,
            "eer": round(eer, 4),
            "eer_threshold": round(eer_threshold, 4),
            "tar_at_far": {},
            "median_image_ms": round(median(self.image_ms), 1) if self.image_ms else None,
        }
        for far in REPORTED_FARS:
            threshold = self.threshold_at_far(far) if self.impostor.size else float("nan")
            data["tar_at_far"][f"{far:g}"] = {
                "threshold": round(threshold, 4),
                "tar": round(self.tar(threshold), 4),
                "measurable": bool(far * self.impostor.size >= 1.0),
            }
        if matcher is not None:
            data["configured"] = {
                name: {"threshold": round(t, 4), "tar": round(self.tar(t), 4), "far": round(self.far(t), 5)}
                for name, t in (("match", matcher.match_threshold), ("review", matcher.review_threshold))
            }
        return data


def read_pairs(path: str | Path) -> list[Pair]:
    try:
        with open(path, newline="") as stream:
            reader = csv.DictReader(stream)
            missing = {"file_a", "file_b", "same"} - set(reader.fieldnames or [])
            if missing:
                raise PairsError(f"{path} lacks the column(s) {', '.join(sorted(missing))}")
            pairs = []
            for line, row in enumerate(reader, start=2):
                same = row["same"].strip().lower()
                if same not in {"0", "1", "true", "false"}:
                    raise PairsError(f"{path}:{line}: 'same' must be 0 or 1, not {row['same']!r}")
                pairs.append(Pair(row["file_a"].strip(), row["file_b"].strip(), same in {"1", "true"}))
            return pairs
    except OSError as error:
        raise PairsError(f"cannot read {path}: {error}") from error


def evaluate(
    matcher: FaceMatcher,
    pairs: list[Pair],
    root: str | Path,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Embed each distinct image once (the service's own ID-photo path), then score every pair."""
    root = Path(root)
    images = sorted({p.a for p in pairs} | {p.b for p in pairs})
    embeddings: dict[str, np.ndarray] = {}
    failures: dict[str, str] = {}
    image_ms = []
    for done, name in enumerate(images, start=1):
        started = time.perf_counter()
        try:
            bgr = decode_image((root / name).read_bytes(), max_bytes=1 << 30, max_pixels=200_000_000)
            embeddings[name] = matcher.embed_photo(bgr).embedding
        except FileNotFoundError:
            failures[name] = "missing_file"
        except (ImageError, FaceError) as error:
            failures[name] = error.code
        image_ms.append((time.perf_counter() - started) * 1000)
        if progress:
            progress(done, len(images))
    genuine, impostor = [], []
    for pair in pairs:
        a, b = embeddings.get(pair.a), embeddings.get(pair.b)
        score = similarity(a, b) if a is not None and b is not None else FAILED
        (genuine if pair.same else impostor).append(score)
    return Evaluation(np.array(genuine, dtype=np.float64), np.array(impostor, dtype=np.float64), failures, image_ms)


def stderr_progress(done: int, total: int) -> None:
    if done == total or done % 25 == 0:
        print(f"\rembedded {done}/{total} images", end="\n" if done == total else "", file=sys.stderr, flush=True)
