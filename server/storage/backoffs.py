"""Growing delays after failed sign-ins, kept in the database (the `failure_counts` table the shared
limits use, under keys of their own): every instance on the database sees the same counts, and a
restart clears none. Keys are keyed hashes: neither names nor client addresses are kept in clear."""

from __future__ import annotations

import time
from collections.abc import Callable

from .store import Store

PURPOSE = "signin_backoff"


class Backoffs:
    def __init__(self, store: Store) -> None:
        self.store = store

    def paused_for(self, key: str, now: float | None = None) -> float:
        """Seconds until `key` may try again (0: now)."""
        now = time.time() if now is None else now
        row = self.store._one("SELECT paused_until, forget_at FROM failure_counts WHERE key = ?", (self._key(key),))
        return max(0.0, row["paused_until"] - now) if row and row["forget_at"] >= now else 0.0

    def record_failure(self, key: str, delay_after: Callable[[int], float], forget_s: float, now: float | None = None) -> float:
        """One more failure of `key`; it then waits `delay_after(failures)` seconds (returned). A key quiet for
        `forget_s` after its delay starts again from nothing."""
        now = time.time() if now is None else now
        hashed = self._key(key)
        fresh = "(failure_counts.forget_at < ?)"
        with self.store.transaction():
            row = self.store._one(
                f"""INSERT INTO failure_counts (key, failures, window_start, paused_until, forget_at) VALUES (?, 1, ?, 0, ?)
                    ON CONFLICT (key) DO UPDATE SET
                        failures = CASE WHEN {fresh} THEN 1 ELSE failure_counts.failures + 1 END,
                        window_start = CASE WHEN {fresh} THEN excluded.window_start ELSE failure_counts.window_start END
                    RETURNING failures""",
                (hashed, now, now + forget_s, now, now),
            )
            assert row is not None  # RETURNING gives the row
            delay = delay_after(row["failures"])
            self.store._write("UPDATE failure_counts SET paused_until = ?, forget_at = ? WHERE key = ?", (now + delay, now + delay + forget_s, hashed))
        return delay

    def clear(self, key: str) -> None:
        self.store._write("DELETE FROM failure_counts WHERE key = ?", (self._key(key),))

    def forget_old(self, now: float | None = None) -> int:
        """Rows that no longer delay anything (the shared heartbeat drops them too, when there is one)."""
        return self.store._write("DELETE FROM failure_counts WHERE forget_at < ?", (time.time() if now is None else now,)).rowcount

    def _key(self, key: str) -> str:
        return self.store.cipher.lookup_hash(key, PURPOSE)
