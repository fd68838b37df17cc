"""Sandbox completion: a sandbox session driven to a chosen final status without a camera, so a merchant can
test its webhook handling. It walks the same moves as a customer (consented, ID uploaded, live, processing,
final), so the audit log, the receipt and the webhook are the real ones."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import FlowError
from ..reasons import Reason
from ..sessions import Session, Status
from ..storage.store import ConflictError
from .lifecycle import Lifecycle

OUTCOMES = {"approved": Status.APPROVED, "rejected": Status.REJECTED, "review": Status.REVIEW, "failed": Status.FAILED}
DEFAULT_REASONS = {Status.REJECTED: Reason.FACE_MISMATCH, Status.FAILED: Reason.TIMEOUT}
# Where a walk may start: a live check or a final state is never overtaken.
STARTS = (Status.CREATED, Status.CONSENTED, Status.ID_UPLOADED)
ACTOR = "sandbox"


@dataclass(frozen=True)
class Completion:
    target: Status
    failure_reason: Reason | None


def completion(outcome: object, failure_reason: object = None) -> Completion | None:
    """The requested completion, or None when the outcome or the reason is not one of ours. A reason is
    only taken for `failed` and `rejected` (a person in review has no failure reason)."""
    if not isinstance(outcome, str) or outcome not in OUTCOMES:
        return None
    target = OUTCOMES[outcome]
    if failure_reason is None:
        return Completion(target, DEFAULT_REASONS.get(target))
    if target not in DEFAULT_REASONS or failure_reason not in set(Reason):
        return None
    return Completion(target, Reason(failure_reason))


def complete(lifecycle: Lifecycle, session: Session, wanted: Completion, actor: str) -> Session:
    if session.status not in STARTS or session.redacted_at is not None:
        raise FlowError("wrong_state", f"the session is {session.status.value}; only a session not yet at its live check can be completed")
    lifecycle.store.audit(actor, "sandbox.completed", session.id, {"outcome": wanted.target.value})
    try:
        for step in (Status.CONSENTED, Status.ID_UPLOADED):
            if STARTS.index(session.status) < STARTS.index(step):
                session = lifecycle.move(session, step, ACTOR)
        attempts = session.max_attempts if wanted.target == Status.FAILED else min(session.attempts + 1, session.max_attempts)
        session = lifecycle.move(session, Status.LIVE, ACTOR, attempts=attempts)
        if wanted.target != Status.FAILED:
            session = lifecycle.move(session, Status.PROCESSING, ACTOR)
        reason = wanted.failure_reason.value if wanted.failure_reason else None
        return lifecycle.move(session, wanted.target, ACTOR, failure_reason=reason)
    except ConflictError:  # a customer or the merchant moved it meanwhile
        raise FlowError("wrong_state", "the session changed meanwhile") from None
