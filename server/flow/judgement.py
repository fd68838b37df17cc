"""What a passed check's face match and risk signals make of the session: one pure rule, used by the live
and recorded checks (flow/attempts.py) and by the offline judgement of a clip (`python -m server liveness
CLIP --reference PHOTO`, flow/offline.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..matching.matcher import Decision
from ..reasons import Reason
from ..sessions import Status
from ..spoof.signals import Action, RiskSignal, SignalCode

# Signals that speak about the person in front of the camera; the others are about the stream (injection
# tools, virtual cameras) and only act on live keys: sandbox checks run on test rigs such as a fake camera.
PERSON_SIGNALS = frozenset({SignalCode.PAD_ATTACK, SignalCode.PAD_UNCERTAIN, SignalCode.PAD_UNSCORED})


@dataclass(frozen=True)
class Judgement:
    status: Status
    failure_reason: str | None = None
    attacks: tuple[str, ...] = ()  # codes of the signals that failed the check (an attack)
    review_because: tuple[str, ...] = ()  # codes of the signals that held an approval back for review


def judge(decision: Decision, signals: Iterable[RiskSignal], sandbox: bool, waived: frozenset[SignalCode] = frozenset()) -> Judgement:
    """An acting `fail` signal is an attack whatever the match; otherwise the match decides, and an acting
    `review` signal (not `waived`) turns an approval into a review. On sandbox keys only the signals about
    the person act."""
    acting = [s for s in signals if s.code in PERSON_SIGNALS or not sandbox]
    attacks = tuple(s.code.value for s in acting if s.action == Action.FAIL)
    if attacks:
        return Judgement(Status.FAILED, Reason.PRESENTATION_ATTACK.value, attacks=attacks)
    target = {Decision.MATCH: Status.APPROVED, Decision.REVIEW: Status.REVIEW, Decision.NO_MATCH: Status.REJECTED}[decision]
    wanting_review = tuple(s.code.value for s in acting if s.action == Action.REVIEW and s.code not in waived)
    if target == Status.APPROVED and wanting_review:
        return Judgement(Status.REVIEW, review_because=wanting_review)
    return Judgement(target, Reason.FACE_MISMATCH.value if target == Status.REJECTED else None)


def gallery_outcome(signals: list[RiskSignal], record: dict[str, Any], target: Status, failure_reason: str | None) -> tuple[Status, str | None]:
    """The gallery's signals join the record; one whose action is to fail rejects, others ask for review."""
    if not signals:
        return target, failure_reason
    record["signals"] = [*record.get("signals", []), *(s.to_dict() for s in signals)]
    if any(s.action == Action.FAIL for s in signals):
        return Status.REJECTED, Reason.IDENTITY_CONFLICT.value
    record["review_because"] = [*record.get("review_because", []), *(s.code.value for s in signals)]
    return Status.REVIEW, failure_reason
