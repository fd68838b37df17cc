"""Desktop-to-phone handoff links in storage: only hashes of the link and of the desktop's browser key."""

from __future__ import annotations

from dataclasses import dataclass

from .store import Store


@dataclass(frozen=True)
class HandoffRecord:
    session_id: str
    expires_at: float
    claimed_at: float | None


class HandoffRecords:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, session_id: str, token_hash: str, watcher_key_hash: str, now: float, expires_at: float) -> None:
        self.store._write(
            "INSERT INTO handoffs (session_id, token_hash, watcher_key_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            (session_id, token_hash, watcher_key_hash, now, expires_at),
        )

    def count(self, session_id: str) -> int:
        row = self.store._one("SELECT COUNT(*) AS n FROM handoffs WHERE session_id = ?", (session_id,))
        return int(row["n"]) if row else 0

    def find(self, token_hash: str) -> HandoffRecord | None:
        row = self.store._one("SELECT session_id, expires_at, claimed_at FROM handoffs WHERE token_hash = ?", (token_hash,))
        return HandoffRecord(row["session_id"], row["expires_at"], row["claimed_at"]) if row else None

    def claim(self, session_id: str, token_hash: str, browser_key_hash: str, now: float) -> bool:
        """Use the link up and bind its session to the phone's browser, both or neither; only the first
        claim of any of the session's links succeeds (the others are dead from then on)."""
        with self.store.transaction():
            # The session's row first: it serialises two phones claiming two links of one session.
            self.store._write("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, session_id))
            used = self.store._write(
                """UPDATE handoffs SET claimed_at = ?
                   WHERE token_hash = ? AND session_id = ? AND claimed_at IS NULL AND expires_at > ?
                   AND NOT EXISTS (SELECT 1 FROM handoffs claimed WHERE claimed.session_id = ? AND claimed.claimed_at IS NOT NULL)""",
                (now, token_hash, session_id, now, session_id),
            )
            if used.rowcount != 1:
                return False
            self.store._write("UPDATE sessions SET browser_key_hash = ?, updated_at = ? WHERE id = ?", (browser_key_hash, now, session_id))
        return True

    def watched(self, watcher_key_hash: str) -> str | None:
        """The session this desktop handed off last."""
        row = self.store._one("SELECT session_id FROM handoffs WHERE watcher_key_hash = ? ORDER BY id DESC LIMIT 1", (watcher_key_hash,))
        return row["session_id"] if row else None

    def handed_off(self, session_id: str) -> bool:
        return self.store._one("SELECT 1 AS one FROM handoffs WHERE session_id = ? AND claimed_at IS NOT NULL", (session_id,)) is not None
