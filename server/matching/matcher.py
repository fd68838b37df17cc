"""Face match: embed the ID photo's face and the live faces, compare, decide with calibrated thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from itertools import combinations

import numpy as np

from ..models.loader import FaceModels
from .calibration import Calibration
from .faces import FaceError, FaceQualityLimits, check_quality, find_face


class Decision(StrEnum):
    MATCH = "match"
    REVIEW = "review"
    NO_MATCH = "no_match"


@dataclass(frozen=True)
class EmbeddedFace:
    embedding: np.ndarray  # unit length
    aligned: np.ndarray  # 112x112 BGR face, the only image of it worth keeping
    quality: dict[str, float]


@dataclass(frozen=True)
class MatchResult:
    score: float
    decision: Decision
    threshold: float
    review_threshold: float
    far: float  # the calibrated false-accept rate band the score falls in

    def to_dict(self) -> dict:
        return {
            "score": round(self.score, 4),
            "decision": self.decision.value,
            "threshold": round(self.threshold, 4),
            "review_threshold": round(self.review_threshold, 4),
            "far_band": self.far,
        }


class FaceMatcher:
    def __init__(
        self,
        models: FaceModels,
        calibration: Calibration,
        match_far: float = 1e-3,
        review_far: float = 1e-2,
        limits: FaceQualityLimits | None = None,
    ) -> None:
        self.models = models
        self.calibration = calibration
        self.match_threshold = calibration.threshold_for(match_far)
        self.review_threshold = min(calibration.threshold_for(review_far), self.match_threshold)
        self.limits = limits or FaceQualityLimits()

    def embed_photo(self, bgr: np.ndarray, check: bool = True) -> EmbeddedFace:
        """The one face of an ID (or any) photo; FaceError when it is missing, doubled or unusable."""
        found = find_face(self.models.detector, bgr)
        aligned = self.models.embedder.aligned(found.image, found.face.kps)
        quality = check_quality(found, aligned, self.limits) if check else {}
        return EmbeddedFace(self.models.embedder.get_aligned(aligned), aligned, quality)

    def embed_live(self, crops: list[np.ndarray]) -> list[EmbeddedFace]:
        """Faces kept by the liveness analyzer; crops where the detector finds no face are skipped."""
        faces = []
        for crop in crops:
            found = self.models.detector.get(crop)
            if not found:
                continue
            face = max(found, key=lambda f: f.area)
            aligned = self.models.embedder.aligned(crop, face.kps)
            faces.append(EmbeddedFace(self.models.embedder.get_aligned(aligned), aligned, {}))
        return faces

    def same_person_throughout(self, faces: list[EmbeddedFace]) -> bool:
        """Every pair of live faces is at least a `review`-level match: nobody swapped in mid-check."""
        return all(similarity(a.embedding, b.embedding) >= self.review_threshold for a, b in combinations(faces, 2))

    def compare(self, reference: np.ndarray, live: list[np.ndarray]) -> MatchResult:
        """Reference embedding vs the mean of the live embeddings."""
        if not live:
            raise FaceError("no_face", "no usable live face")
        mean = np.mean(np.stack(live), axis=0)
        mean /= max(float(np.linalg.norm(mean)), 1e-12)
        return self.decide(similarity(reference, mean))

    def decide(self, score: float) -> MatchResult:
        if score >= self.match_threshold:
            decision = Decision.MATCH
        elif score >= self.review_threshold:
            decision = Decision.REVIEW
        else:
            decision = Decision.NO_MATCH
        return MatchResult(score, decision, self.match_threshold, self.review_threshold, self.calibration.far_at(score))


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))
