"""What a session keeps of a document reading, and what about it stands in the way of approval. Pure.

Only what identifies the person and the document is kept (name, numbers, dates, sex, nationality), with
the checks and how the merchant's expected values compared; never the address or the issuing office.
The fields go when the evidence is purged (RETENTION_DAYS); the type, checks and matches stay.
"""

from __future__ import annotations

from typing import Any

from ..reasons import Reason
from .reading import Expected
from .results import DocumentReading

KEPT_FIELDS = ("name", "id_number", "document_number", "date_of_birth", "sex", "date_of_expiry", "nationality", "issuing_state", "document_code")


def session_document(reading: DocumentReading, expected: Expected | None) -> dict[str, Any]:
    data = reading.to_dict()
    data["fields"] = {name: value for name, value in data["fields"].items() if name in KEPT_FIELDS}
    data["expected_matches"] = expected.matches(reading) if expected is not None and expected.to_dict() else None
    return data


def document_number(document: dict[str, Any] | None) -> str | None:
    """The number a document identifies its holder by: the ID number, else the document number."""
    fields = (document or {}).get("fields") or {}
    for name in ("id_number", "document_number"):
        value = (fields.get(name) or {}).get("value")
        if value:
            return str(value).strip().upper()
    return None


def without_personal_data(document: dict[str, Any]) -> dict[str, Any]:
    """What stays of a document once evidence is purged: its type, checks and outcome, not what it said."""
    return {**document, "fields": {}}


def document_problem(document: dict[str, Any] | None, expected: dict[str, Any] | None = None) -> Reason | None:
    """Why the document stands in the way, most serious first; None when it does not.

    A failed checksum is a misread or a forgery; an expected value the document contradicts, or does not
    show at all (a face pasted on another document, the wrong side, or no document read), is a mismatch;
    then expiry. An unrecognised document without expected values is the face only."""
    if not document:
        return Reason.DOCUMENT_MISMATCH if expected else None
    if any(check.get("passed") is False for check in document.get("checks", [])):
        return Reason.DOCUMENT_CHECKSUM_FAILED
    matches = document.get("expected_matches") or {}
    if any(result is not True for result in matches.values()):
        return Reason.DOCUMENT_MISMATCH
    if document.get("expired") is True:
        return Reason.DOCUMENT_EXPIRED
    return None
