"""An operator puts a session's face on the merchant's blocklist, with a reason. Alone, or with four-eyes
on (as for review decisions), once a second operator asks for it too; each request is audited."""

from __future__ import annotations

from enum import StrEnum

from ..gallery.service import Gallery
from ..sessions import Session
from ..storage.operators import Operator, OperatorStore

BLOCK_VOTE = "blocklist"  # a review_votes row of a request to blocklist (review decisions are approved/rejected)
MAX_REASON = 500


class BlockVerdict(StrEnum):
    BLOCKED = "blocklisted"
    WAITING = "blocklist_waiting"  # four-eyes: recorded, a second operator must ask too
    ALREADY_VOTED = "already_voted"
    BAD_INPUT = "bad_input"


def request_block(gallery: Gallery, operators: OperatorStore, operator: Operator, session: Session, reason: str, four_eyes: bool) -> BlockVerdict:
    """GalleryError when the session no longer has a face template."""
    reason = " ".join(reason.split())
    if not reason or len(reason) > MAX_REASON:
        return BlockVerdict.BAD_INPUT
    if gallery.blocked(session.id):
        return BlockVerdict.BLOCKED
    actor = operator.actor
    if four_eyes:
        votes = [v for v in operators.votes(session.id) if v.decision == BLOCK_VOTE]
        if any(v.operator_id == operator.id for v in votes):
            return BlockVerdict.ALREADY_VOTED
        operators.add_vote(session.id, operator.id, BLOCK_VOTE, reason)
        gallery.store.audit(actor, "gallery.block_requested", session.id)
        if not votes:
            return BlockVerdict.WAITING
        actor = f"operator:{operator.merchant}/{votes[0].operator}+{operator.name}"
    gallery.block(session, reason, actor)
    return BlockVerdict.BLOCKED
