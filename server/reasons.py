"""Why a live attempt or a session failed: the one list of reasons.

The liveness engine, the live attempts, the result pages (`reason.<value>` in every locale), the API
(`failure_reason`, the `Reason` schema in openapi.json) and the webhooks all use these values; a test
checks that every one has an English and a Chinese text and an OpenAPI entry.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # The liveness engine's verdicts.
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    FACE_LOST = "face_lost"
    FACE_SWAP = "face_swap"
    WRONG_ACTION = "wrong_action"
    TIMEOUT = "timeout"
    NOT_NEUTRAL = "not_neutral"
    NOT_READY = "not_ready"
    TOO_DARK = "too_dark"  # the face stayed too dim (and noisy) for the checks to judge it: more light, then retry
    STREAM_ENDED = "stream_ended"
    # Passive anti-spoofing: the face looked presented (a screen, a print), not live.
    PRESENTATION_ATTACK = "presentation_attack"
    # A recorded check (the fallback without a live connection): the clip could not be read, was too
    # short or too long, or its movements did not follow the timetable the server issued for it.
    RECORDING_UNREADABLE = "recording_unreadable"
    RECORDING_LENGTH = "recording_length"
    OFF_SCHEDULE = "off_schedule"
    # A live attempt that ended without a verdict.
    ABANDONED = "abandoned"
    CONNECTION_LOST = "connection_lost"
    INTERRUPTED = "interrupted"
    INTERNAL_ERROR = "internal_error"
    # The decision after a passed liveness check.
    FACE_MISMATCH = "face_mismatch"
    REFERENCE_MISSING = "reference_missing"
    # An operator looked at a session in review and rejected it (their reason is in the session's review).
    REJECTED_IN_REVIEW = "rejected_in_review"
    # The ID document read from the reference photo (the merchant's DOCUMENT_OUTCOME applies).
    DOCUMENT_CHECKSUM_FAILED = "document_checksum_failed"
    DOCUMENT_MISMATCH = "document_mismatch"
    DOCUMENT_EXPIRED = "document_expired"
    # The merchant's face gallery: the face or the document is another identity's, or blocklisted, and the
    # merchant chose to reject such sessions (server/gallery/checks.py; the signals say which).
    IDENTITY_CONFLICT = "identity_conflict"
    # The merchant erased the session.
    REDACTED = "redacted"


# Why a live connection ended without a verdict -> the reason recorded for the attempt.
ENDINGS: dict[str, Reason] = {
    "bye": Reason.ABANDONED,
    "redacted": Reason.REDACTED,
    "server_shutdown": Reason.INTERRUPTED,
    "analysis_error": Reason.INTERNAL_ERROR,
    "setup_failed": Reason.CONNECTION_LOST,
}

# Endings that are not the customer's doing: they never count toward the failure limit.
NOT_THE_CUSTOMERS_DOING = frozenset({"server_shutdown", "redacted", "bye"})

# Reasons the customer is not told (the result page says only that the check did not succeed): naming
# them would teach an attacker what to fix.
NOT_TOLD_TO_THE_CUSTOMER = frozenset({Reason.PRESENTATION_ATTACK.value})
