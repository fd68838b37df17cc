"""What a receipt says about one final decision: enough to show what was checked, by which models, with
which thresholds, on which evidence, without a face or a name in it. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..sessions import Session
from ..spoof.signals import SignalCode

VERSION = 1


@dataclass(frozen=True)
class ReceiptContext:
    """What the session row does not hold."""

    issuer: str  # the service's public URL
    merchant_id: int | None
    evidence_sha256: dict[str, str]  # evidence kind -> SHA-256 of its sealed bytes, as stored
    models: Sequence[dict[str, str]]  # role, name, sha256 of every model file loaded
    approve_without_anti_spoofing: bool


def reference_sha256(session_id: str, reference_id: str | None) -> str | None:
    """The merchant's reference, salted with the session id: a merchant recomputes it, nobody else can
    look it up in a table of phone or order numbers."""
    if reference_id is None:
        return None
    return hashlib.sha256(f"{session_id}\0{reference_id}".encode()).hexdigest()


def receipt_claims(session: Session, context: ReceiptContext, now: float) -> dict[str, Any]:
    liveness = session.liveness or {}
    signals = liveness.get("signals") or []
    pad_signal = next((s for s in signals if str(s.get("code", "")).startswith("pad_")), None)
    pad = liveness.get("pad") or {}
    consent = session.consent or {}
    reasons = [session.failure_reason] if session.failure_reason else []
    reasons += [code for code in liveness.get("review_because", []) if code not in reasons]
    return {
        "iss": context.issuer,
        "sub": session.id,
        "iat": int(now),
        "receipt_version": VERSION,
        "merchant": {"id": context.merchant_id, "name": session.merchant_name},
        "sandbox": session.sandbox,
        "reference_sha256": reference_sha256(session.id, session.reference_id),
        "decision": session.status.value,
        "reasons": reasons,
        "settled_by": "operator" if session.review else "service",
        "challenges": [{"type": c.get("type"), "passed": c.get("passed")} for c in liveness.get("challenges", [])],
        "signals": [{"code": s.get("code"), "action": s.get("action")} for s in signals if s.get("action") != "none"],
        "scores": {
            "match": _pick(session.match, ("score", "decision", "threshold", "review_threshold", "far_band")),
            "pad": None if not pad else {
                "score": pad.get("score"),
                "verdict": pad.get("verdict"),
                "thresholds": (pad_signal or {}).get("detail", {}).get("thresholds"),
            },
        },
        "anti_spoofing": {
            "loaded": any(m.get("role") == "pad" for m in context.models),
            "approve_without": context.approve_without_anti_spoofing,
            "unavailable": pad_signal is not None and pad_signal.get("code") == SignalCode.PAD_UNAVAILABLE.value,
        },
        "models": [dict(m) for m in context.models],
        "consent": {"version": consent.get("version"), "locale": consent.get("locale"), "text_sha256": consent.get("text_sha256")} if consent else None,
        "path": liveness.get("path"),
        "times": {
            "created_at": _seconds(session.created_at),
            "consented_at": _seconds(consent.get("at")),
            "finished_at": _seconds(session.finished_at),
        },
        "evidence_sha256": dict(sorted(context.evidence_sha256.items())),
    }


def _pick(record: dict[str, Any] | None, names: tuple[str, ...]) -> dict[str, Any] | None:
    return None if not record else {name: record.get(name) for name in names}


def _seconds(value: float | None) -> int | None:
    return None if value is None else int(value)
