"""What a gallery search finds, as risk signals. Pure: the search results in, signals out.

- `blocklisted_face`: the face matches one the merchant's operators blocked.
- `duplicate_face`: the face matches an enrolled customer registered under another document number
  (or, when either has none, another merchant reference): one person, several identities.
- `document_reused`: the document number is enrolled with a face that does not match this one (a score
  the 1:1 matcher would call no match): one document, several people.
- `document_cap`: the merchant already approved its cap of sessions with this document number.

Each carries the other sessions, the best score and its calibrated false-accept band, and the action
the merchant chose for gallery hits (review, or reject).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..spoof.signals import Action, Level, RiskSignal, SignalCode
from ..storage.gallery import BLOCKED, ENROLLED, Hit

MAX_LISTED = 10  # other sessions named in one signal's evidence


@dataclass(frozen=True)
class Identity:
    """Who the session says it is: keyed hashes of its document number and of the merchant's reference."""

    session_id: str
    document_hash: str | None
    reference_hash: str | None


@dataclass(frozen=True)
class Policy:
    same_face: float  # the gallery threshold (GALLERY_FAR)
    different_face: float  # below this a face is another person's (the matcher's review threshold)
    action: Action  # REVIEW or FAIL
    document_cap: int  # 0: no cap


def gallery_signals(
    identity: Identity,
    nearest: list[Hit],
    same_document: list[Hit],
    approved_same_document: list[str],
    policy: Policy,
    far_at: Callable[[float], float],
) -> list[RiskSignal]:
    out: list[RiskSignal] = []
    others = [hit for hit in nearest if hit.entry.session_id != identity.session_id or hit.entry.session_id is None]
    blocked = [hit for hit in others if hit.entry.kind == BLOCKED and hit.score >= policy.same_face]
    if blocked:
        out.append(RiskSignal(SignalCode.BLOCKLISTED_FACE, Level.HIGH, _evidence(blocked, far_at), policy.action))
    duplicates = [hit for hit in others if hit.entry.kind == ENROLLED and hit.score >= policy.same_face and _another_identity(identity, hit)]
    if duplicates:
        out.append(RiskSignal(SignalCode.DUPLICATE_FACE, Level.HIGH, _evidence(duplicates, far_at), policy.action))
    reused = [
        hit for hit in same_document
        if hit.entry.kind == ENROLLED and hit.entry.session_id != identity.session_id and hit.score < policy.different_face
    ]
    if reused:
        detail = _evidence(reused, far_at, best=False)
        out.append(RiskSignal(SignalCode.DOCUMENT_REUSED, Level.ELEVATED, detail, policy.action))
    if policy.document_cap and identity.document_hash and len(approved_same_document) >= policy.document_cap:
        detail = {"approved": len(approved_same_document), "cap": policy.document_cap, "sessions": approved_same_document[:MAX_LISTED]}
        out.append(RiskSignal(SignalCode.DOCUMENT_CAP, Level.ELEVATED, detail, policy.action))
    return out


def _another_identity(identity: Identity, hit: Hit) -> bool:
    """Both have a document number and they differ; else both have a reference and they differ."""
    entry = hit.entry
    if identity.document_hash and entry.document_hash:
        return identity.document_hash != entry.document_hash
    if identity.reference_hash and entry.reference_hash:
        return identity.reference_hash != entry.reference_hash
    return False


def _evidence(hits: list[Hit], far_at: Callable[[float], float], best: bool = True) -> dict:
    """The other sessions, and the score that says most: the highest for a match, the lowest for a mismatch."""
    score = max(hit.score for hit in hits) if best else min(hit.score for hit in hits)
    sessions = [hit.entry.session_id for hit in hits if hit.entry.session_id][:MAX_LISTED]
    return {"sessions": sessions, "matches": len(hits), "score": round(score, 4), "far_band": far_at(score)}
