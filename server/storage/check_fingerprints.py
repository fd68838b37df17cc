"""The merchant's recent check fingerprints (spoof/replay_fingerprint.py), for the replayed-check search.

One per session (its latest decided check), sealed like evidence and erased with it: the session's
evidence deleted (redaction, DELETE, minimal retention at the decision) or purged at the retention period
takes its fingerprint along (Store.delete_evidence, Store.purge_evidence_before). A search reads only the
merchant's own partition (live or sandbox keys), newest first, at most `limit` rows: its cost does not
grow with the deployment.
"""

from __future__ import annotations

import time

from .store import Store

RECENT_CHECKS = 500  # fingerprints a new check is compared with (about 0.6 ms each)


class CheckFingerprints:
    def __init__(self, store: Store) -> None:
        self.store = store

    def keep(self, session_id: str, sandbox: bool, fingerprint: bytes) -> None:
        """Kept for the merchant's next checks, unless the session was redacted meanwhile."""
        sealed = self.store.cipher.seal(fingerprint, f"fingerprint:{session_id}")
        self.store._write(
            """INSERT INTO check_fingerprints (session_id, merchant_id, sandbox, sealed, created_at)
               SELECT id, merchant_id, ?, ?, ? FROM sessions WHERE id = ? AND merchant_id IS NOT NULL AND redacted_at IS NULL
               ON CONFLICT (session_id) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at""",
            (int(sandbox), sealed, time.time(), session_id),
        )

    def earlier(self, session_id: str, sandbox: bool, limit: int = RECENT_CHECKS) -> list[tuple[str, bytes]]:
        """(session id, fingerprint) of the newest checks of the session's merchant on this kind of key, but its own."""
        merchant_id = self.store._merchant_of(session_id)
        if merchant_id is None:
            return []
        rows = self.store._all(
            """SELECT session_id, sealed FROM check_fingerprints WHERE merchant_id = ? AND sandbox = ? AND session_id <> ?
               ORDER BY created_at DESC LIMIT ?""",
            (merchant_id, int(sandbox), session_id, limit),
        )
        return [(r["session_id"], self.store.cipher.open(bytes(r["sealed"]), f"fingerprint:{r['session_id']}")) for r in rows]

    def held(self, session_id: str) -> bool:
        return self.store._one("SELECT 1 AS found FROM check_fingerprints WHERE session_id = ?", (session_id,)) is not None
