"""An operator's decision on a session in review. Alone, or with four-eyes on, once a second operator
agrees: the session then moves (through Lifecycle) to approved or rejected and the merchant gets the
webhook, which names the operators and carries the reason."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from ..flow.lifecycle import Lifecycle
from ..sessions import Session, Status
from ..storage.operators import Operator, OperatorStore
from ..storage.store import ConflictError
from ..webhooks import iso

MAX_REASON = 500
DECISIONS = {"approved": Status.APPROVED, "rejected": Status.REJECTED}


class Verdict(StrEnum):
    SETTLED = "settled"  # the session moved to its decision
    WAITING = "waiting"  # four-eyes: recorded, a second operator must agree
    ALREADY_VOTED = "already_voted"  # four-eyes: the same operator cannot be the second pair of eyes
    NOT_IN_REVIEW = "not_in_review"  # decided meanwhile (or never in review)
    BAD_INPUT = "bad_input"  # no decision or no reason


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    session: Session


def decide(
    lifecycle: Lifecycle, operators: OperatorStore, operator: Operator, session: Session, decision: str, reason: str, four_eyes: bool
) -> Decision:
    reason = " ".join(reason.split())[:MAX_REASON]
    if decision not in DECISIONS or not reason:
        return Decision(Verdict.BAD_INPUT, session)
    if session.status != Status.REVIEW:
        return Decision(Verdict.NOT_IN_REVIEW, session)
    store = lifecycle.store
    deciders = [operator.name]
    if four_eyes:
        votes = [v for v in operators.votes(session.id) if v.decision in DECISIONS]  # not requests to blocklist
        if any(v.operator_id == operator.id for v in votes):
            return Decision(Verdict.ALREADY_VOTED, session)
        agreeing = [v for v in votes if v.decision == decision]
        operators.add_vote(session.id, operator.id, decision, reason)
        store.audit(operator.actor, "review.voted", session.id, {"decision": decision})
        if not agreeing:
            return Decision(Verdict.WAITING, session)
        deciders = [agreeing[0].operator, operator.name]
    record = {"decision": decision, "reason": reason, "decided_by": deciders, "decided_at": iso(time.time())}
    try:
        settled = lifecycle.settle_review(session, DECISIONS[decision], operator.actor, record)
    except ConflictError:
        return Decision(Verdict.NOT_IN_REVIEW, store.session(session.id) or session)
    store.audit(operator.actor, f"review.{decision}", session.id, {"decided_by": deciders})
    return Decision(Verdict.SETTLED, settled)
