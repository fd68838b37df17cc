"""A live face that is the ID portrait itself, re-animated (issue 24 item 2).

A genuine customer's live face matches their ID photo as one photo of a person matches another: taken
years apart, in another light, with another expression. A puppet made from the portrait matches it far
better, and beyond identity: the same light, the same skin texture, the same hair strands. So both are
measured on the aligned 112x112 faces the matcher already has: identity (the embeddings' cosine) and
appearance (the correlation of the two faces' fine detail, a band of spatial frequencies that survives
blur and compression but not a new photograph). Calibrated with `python -m realname_tools.puppets
calibrate` (docs/anti-spoofing.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..matching.matcher import EmbeddedFace, similarity
from .signals import Action, Level, RiskSignal, SignalCode

MARGIN = 12  # pixels of the aligned crop's border left out (background, hair edges)


@dataclass(frozen=True)
class ReplayLimits:
    identity: float = 0.85  # cosine with the reference (another photo of the person: at most 0.82 measured)
    appearance: float = 0.7  # fine-detail correlation with the aligned portrait (another photo: at most 0.63)


def appearance_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two aligned faces' detail between ~2 and ~8 pixels (difference of Gaussians on
    grey), from -1 to 1; the same photograph scores near 1, two photographs of one person near 0-0.4."""
    import cv2

    def detail(bgr: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
        band = cv2.GaussianBlur(grey, (0, 0), 1.2) - cv2.GaussianBlur(grey, (0, 0), 4.0)
        band = band[MARGIN:-MARGIN, MARGIN:-MARGIN]
        band -= band.mean()
        return band / max(float(np.linalg.norm(band)), 1e-6)

    return float(np.sum(detail(a) * detail(b)))


def reference_replay_signal(faces: list[tuple[float, float]], limits: ReplayLimits = ReplayLimits()) -> RiskSignal | None:
    """(identity, appearance) of each live face against the reference: one face that is the portrait in
    both is a replay of it (the rest of a puppet's faces may be caught mid-movement)."""
    found = [(i, a) for i, a in faces if i >= limits.identity and a >= limits.appearance]
    if not found:
        return None
    identity, appearance = max(found, key=lambda f: f[1])
    detail = {"identity": round(identity, 3), "appearance": round(appearance, 3), "faces": len(found), "of": len(faces),
              "limits": {"identity": limits.identity, "appearance": limits.appearance}}
    return RiskSignal(SignalCode.REFERENCE_REPLAY, Level.HIGH, detail, Action.FAIL)


def reference_replay_of(reference: np.ndarray, portrait: np.ndarray, live_faces: list[EmbeddedFace]) -> RiskSignal | None:
    """The signal for a check's live faces against its reference: the embedding and the aligned portrait
    as the session keeps them (its JPEG evidence, decoded)."""
    return reference_replay_signal([(similarity(reference, f.embedding), appearance_similarity(portrait, f.aligned)) for f in live_faces])
