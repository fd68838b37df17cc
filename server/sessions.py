"""The verification session: its states, the moves between them, and what a session holds. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    CREATED = "created"
    CONSENTED = "consented"
    ID_UPLOADED = "id_uploaded"  # a usable reference face is stored (uploaded or supplied by the merchant)
    LIVE = "live"
    PROCESSING = "processing"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVIEW = "review"
    EXPIRED = "expired"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in FINAL


class CheckPath(StrEnum):
    """How the customer's live check reached the service."""

    WEBRTC = "webrtc"  # a direct peer connection
    WEBRTC_RELAY = "webrtc_relay"  # a peer connection through a TURN relay
    RECORDED = "recorded"  # a clip recorded in the browser and uploaded
    HANDOFF = "handoff"  # continued on a phone from a desktop's QR code or short link


FINAL = frozenset({Status.APPROVED, Status.REJECTED, Status.REVIEW, Status.EXPIRED, Status.FAILED})

_ENDINGS = {Status.EXPIRED, Status.FAILED}
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.CREATED: frozenset({Status.CONSENTED, *_ENDINGS}),
    Status.CONSENTED: frozenset({Status.ID_UPLOADED, *_ENDINGS}),
    Status.ID_UPLOADED: frozenset({Status.LIVE, *_ENDINGS}),
    # A failed or interrupted live attempt goes back to id_uploaded while attempts remain.
    Status.LIVE: frozenset({Status.PROCESSING, Status.ID_UPLOADED, *_ENDINGS}),
    Status.PROCESSING: frozenset({Status.APPROVED, Status.REJECTED, Status.REVIEW, Status.ID_UPLOADED, *_ENDINGS}),
    # An operator settles a session in review from the console (the only move out of a final state).
    Status.REVIEW: frozenset({Status.APPROVED, Status.REJECTED}),
}


class TransitionError(ValueError):
    pass


def check_transition(current: Status, target: Status) -> None:
    if target not in TRANSITIONS.get(current, frozenset()):
        raise TransitionError(f"a session cannot go from {current.value} to {target.value}")


@dataclass
class Session:
    id: str
    api_key_id: int
    sandbox: bool
    reference_id: str | None
    status: Status
    created_at: float
    updated_at: float
    expires_at: float
    challenge_count: int
    max_attempts: int
    attempts: int = 0
    locale: str | None = None
    merchant_name: str | None = None
    callback_url: str | None = None
    redirect_url: str | None = None
    fixed_challenges: list[str] | None = None
    failure_reason: str | None = None
    token_used_at: float | None = None
    finished_at: float | None = None
    has_reference: bool = False
    reference_source: str | None = None  # "customer" or "merchant"
    liveness: dict[str, Any] | None = None  # last attempt's verdict and challenge timeline
    match: dict[str, Any] | None = None
    consent: dict[str, Any] | None = None
    live_stats: dict[str, Any] | None = None
    redacted_at: float | None = None
    evidence_purged_at: float | None = None
    review: dict[str, Any] | None = None  # an operator's decision on a session in review (see server/operators)
    expected: dict[str, Any] | None = None  # what the merchant expects the document to say
    document: dict[str, Any] | None = None  # the document read from the reference photo (minimal fields)
    receipt: str | None = None  # the signed receipt of the last final decision (server/receipts)

    JSON_FIELDS = ("fixed_challenges", "liveness", "match", "consent", "live_stats", "review", "expected", "document")

    @property
    def attempts_left(self) -> int:
        return max(0, self.max_attempts - self.attempts)

    @property
    def decision(self) -> str | None:
        return {Status.APPROVED: "approved", Status.REJECTED: "rejected", Status.REVIEW: "review"}.get(self.status)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Session:
        data = dict(row)
        for name in cls.JSON_FIELDS:
            if data.get(name) is not None:
                data[name] = json.loads(data[name])
        data["status"] = Status(data["status"])
        data["sandbox"] = bool(data["sandbox"])
        data["has_reference"] = bool(data["has_reference"])
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
