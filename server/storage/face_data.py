"""Face data in storage, as a person's access request and the filing threshold see it: what one session
holds, described, and how many people's face data is held now."""

from __future__ import annotations

import hashlib
from typing import Any

from ..privacy.census import FaceDataCensus
from .store import Store

MOVEMENT_FINGERPRINT = "movement_fingerprint"  # how a check's row in check_fingerprints is named to the person


class FaceDataRecords:
    def __init__(self, store: Store) -> None:
        self.store = store

    def inventory(self, session_id: str) -> list[dict[str, Any]]:
        """The session's evidence and its check's movement fingerprint (check_fingerprints.py), described:
        kind, size and SHA-256 of the sealed value, when stored."""
        rows = self.store._all("SELECT kind, sealed, created_at FROM evidence WHERE session_id = ?", (session_id,))
        rows += self.store._all(f"SELECT '{MOVEMENT_FINGERPRINT}' AS kind, sealed, created_at FROM check_fingerprints WHERE session_id = ?", (session_id,))
        return [
            {"kind": r["kind"], "sealed_bytes": len(bytes(r["sealed"])), "sealed_sha256": hashlib.sha256(bytes(r["sealed"])).hexdigest(), "stored_at": r["created_at"]}
            for r in sorted(rows, key=lambda r: r["kind"])
        ]

    def census(self, threshold: int) -> FaceDataCensus:
        """Per merchant, the sessions whose face data (crops, templates) is stored now: the people whose
        face information is held (a session is one person's check)."""
        rows = self.store._all(
            """SELECT s.merchant_id AS merchant_id, COUNT(DISTINCT e.session_id) AS n
               FROM evidence e JOIN sessions s ON s.id = e.session_id GROUP BY s.merchant_id"""
        )
        return FaceDataCensus({int(r["merchant_id"]): int(r["n"]) for r in rows if r["merchant_id"] is not None}, threshold)
