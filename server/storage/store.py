"""The one place that speaks SQL. SQLite (WAL) by default; the methods are the contract another backend
(PostgreSQL, for several instances) would implement.

Calls are short (indexed lookups and single-row writes) and run on the event loop's thread; WAL with
synchronous=NORMAL makes a commit a write to the log without an fsync.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..sessions import FINAL, Session, Status, check_transition
from .crypto import Cipher
from .schema import MIGRATIONS


class ConflictError(RuntimeError):
    """The row changed under us (e.g. the session's status moved on)."""


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    sandbox: bool
    created_at: float
    revoked_at: float | None


class Store:
    def __init__(self, path: Path, cipher: Cipher) -> None:
        self.path = Path(path)
        self.cipher = cipher
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))  # SQLite gives -wal/-shm the same mode
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA secure_delete=ON")  # erased evidence is overwritten, not just unlinked
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- plumbing ---------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._lock:
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
            done = {row[0] for row in self._db.execute("SELECT version FROM schema_migrations")}
            for version, sql in enumerate(MIGRATIONS, start=1):
                if version in done:
                    continue
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _statements(sql):
                        self._db.execute(statement)
                    self._db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    def _write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, tuple(params))

    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(sql, tuple(params)).fetchone()
        return dict(row) if row is not None else None

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, tuple(params)).fetchall()]

    def transaction(self):
        return _Transaction(self)

    # -- API keys ---------------------------------------------------------------------------------

    def create_api_key(self, name: str, prefix: str, key_hash: str, sandbox: bool, webhook_secret: bytes) -> int:
        sealed = self.cipher.seal(webhook_secret, f"webhook_secret:{key_hash}")
        cursor = self._write(
            "INSERT INTO api_keys (name, prefix, key_hash, sandbox, webhook_secret, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (name, prefix, key_hash, int(sandbox), sealed, time.time()),
        )
        return int(cursor.lastrowid)

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        row = self._one("SELECT * FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (key_hash,))
        return _api_key(row) if row else None

    def api_keys(self) -> list[ApiKey]:
        return [_api_key(r) for r in self._all("SELECT * FROM api_keys ORDER BY id")]

    def revoke_api_key(self, name_or_prefix: str) -> int:
        cursor = self._write(
            "UPDATE api_keys SET revoked_at = ? WHERE (name = ? OR prefix = ?) AND revoked_at IS NULL",
            (time.time(), name_or_prefix, name_or_prefix),
        )
        return cursor.rowcount

    def webhook_secret(self, api_key_id: int) -> bytes:
        row = self._one("SELECT key_hash, webhook_secret FROM api_keys WHERE id = ?", (api_key_id,))
        if row is None:
            raise KeyError(api_key_id)
        return self.cipher.open(row["webhook_secret"], f"webhook_secret:{row['key_hash']}")

    # -- sessions ---------------------------------------------------------------------------------

    def insert_session(self, session: Session, token_hash: str) -> None:
        values = _session_values(session)
        values["token_hash"] = token_hash
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self._write(f"INSERT INTO sessions ({columns}) VALUES ({marks})", values.values())

    def session(self, session_id: str) -> Session | None:
        row = self._one("SELECT * FROM sessions WHERE id = ?", (session_id,))
        return Session.from_row(row) if row else None

    def session_by_token_hash(self, token_hash: str) -> Session | None:
        row = self._one("SELECT * FROM sessions WHERE token_hash = ?", (token_hash,))
        return Session.from_row(row) if row else None

    def session_by_browser_key_hash(self, browser_key_hash: str) -> Session | None:
        row = self._one("SELECT * FROM sessions WHERE browser_key_hash = ?", (browser_key_hash,))
        return Session.from_row(row) if row else None

    def claim_token(self, session_id: str, browser_key_hash: str) -> bool:
        """Mark the hosted-page token used, binding the session to one browser. False if already used."""
        cursor = self._write(
            "UPDATE sessions SET token_used_at = ?, browser_key_hash = ?, updated_at = ? WHERE id = ? AND token_used_at IS NULL",
            (time.time(), browser_key_hash, time.time(), session_id),
        )
        return cursor.rowcount == 1

    def update_session(self, session_id: str, **fields: Any) -> Session:
        fields["updated_at"] = time.time()
        values = _encode_fields(fields)
        assignments = ", ".join(f"{name} = ?" for name in values)
        self._write(f"UPDATE sessions SET {assignments} WHERE id = ?", [*values.values(), session_id])
        session = self.session(session_id)
        if session is None:
            raise KeyError(session_id)
        return session

    def move_session(self, session_id: str, expected: Status, target: Status, **fields: Any) -> Session:
        """Change status from `expected` to `target` atomically; ConflictError if it is no longer `expected`."""
        check_transition(expected, target)
        now = time.time()
        fields.update(status=target.value, updated_at=now)
        if target in FINAL:
            fields.setdefault("finished_at", now)
        values = _encode_fields(fields)
        assignments = ", ".join(f"{name} = ?" for name in values)
        cursor = self._write(
            f"UPDATE sessions SET {assignments} WHERE id = ? AND status = ?",
            [*values.values(), session_id, expected.value],
        )
        if cursor.rowcount != 1:
            raise ConflictError(f"session {session_id} is no longer {expected.value}")
        return self.session(session_id)  # type: ignore[return-value]

    def sessions_with_status(self, statuses: Iterable[Status]) -> list[Session]:
        wanted = [s.value for s in statuses]
        marks = ", ".join("?" for _ in wanted)
        return [Session.from_row(r) for r in self._all(f"SELECT * FROM sessions WHERE status IN ({marks})", wanted)]

    def sessions_to_expire(self, now: float, live_grace_s: float) -> list[Session]:
        """Unfinished sessions past their lifetime (a check under way gets `live_grace_s` more)."""
        rows = self._all(
            """SELECT * FROM sessions WHERE status IN ('created', 'consented', 'id_uploaded') AND expires_at < ?
               UNION ALL
               SELECT * FROM sessions WHERE status IN ('live', 'processing') AND expires_at < ?""",
            (now, now - live_grace_s),
        )
        return [Session.from_row(r) for r in rows]

    def delete_finished_sessions_before(self, before: float) -> int:
        with self.transaction():
            ids = [r["id"] for r in self._all("SELECT id FROM sessions WHERE finished_at IS NOT NULL AND finished_at < ?", (before,))]
            for session_id in ids:
                self._write("DELETE FROM webhook_events WHERE session_id = ?", (session_id,))
                self._write("DELETE FROM sessions WHERE id = ?", (session_id,))
        return len(ids)

    # -- evidence ---------------------------------------------------------------------------------

    def put_evidence(self, session_id: str, kind: str, data: bytes) -> None:
        sealed = self.cipher.seal(data, f"evidence:{session_id}:{kind}")
        self._write(
            "INSERT OR REPLACE INTO evidence (session_id, kind, sealed, created_at) VALUES (?, ?, ?, ?)",
            (session_id, kind, sealed, time.time()),
        )

    def evidence(self, session_id: str, kind: str) -> bytes | None:
        row = self._one("SELECT sealed FROM evidence WHERE session_id = ? AND kind = ?", (session_id, kind))
        return self.cipher.open(row["sealed"], f"evidence:{session_id}:{kind}") if row else None

    def evidence_kinds(self, session_id: str) -> list[str]:
        return [r["kind"] for r in self._all("SELECT kind FROM evidence WHERE session_id = ? ORDER BY kind", (session_id,))]

    def delete_evidence(self, session_id: str) -> int:
        return self._write("DELETE FROM evidence WHERE session_id = ?", (session_id,)).rowcount

    def purge_evidence_before(self, before: float) -> list[str]:
        """Erase evidence older than `before`; returns the sessions it belonged to."""
        with self.transaction():
            ids = [r["session_id"] for r in self._all("SELECT DISTINCT session_id FROM evidence WHERE created_at < ?", (before,))]
            self._write("DELETE FROM evidence WHERE created_at < ?", (before,))
            now = time.time()
            for session_id in ids:
                self._write("UPDATE sessions SET evidence_purged_at = ?, has_reference = 0 WHERE id = ?", (now, session_id))
        return ids

    # -- webhooks ---------------------------------------------------------------------------------

    def add_webhook_event(self, event_id: str, session_id: str, api_key_id: int, type_: str, url: str, body: str) -> None:
        now = time.time()
        self._write(
            """INSERT INTO webhook_events (id, session_id, api_key_id, type, url, body, created_at, next_attempt_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (event_id, session_id, api_key_id, type_, url, body, now, now),
        )

    def scrub_webhook_events(self, session_id: str) -> None:
        """Remove the merchant's reference from queued and past event bodies of a redacted session."""
        with self.transaction():
            for row in self._all("SELECT id, body FROM webhook_events WHERE session_id = ?", (session_id,)):
                body = json.loads(row["body"])
                body.get("data", {}).get("session", {})["reference_id"] = None
                self._write("UPDATE webhook_events SET body = ? WHERE id = ?", (json.dumps(body, separators=(",", ":"), sort_keys=True), row["id"]))

    def due_webhook_events(self, now: float, limit: int = 20) -> list[dict[str, Any]]:
        return self._all(
            """SELECT * FROM webhook_events WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= ?
               ORDER BY next_attempt_at LIMIT ?""",
            (now, limit),
        )

    def next_webhook_due(self) -> float | None:
        row = self._one("SELECT MIN(next_attempt_at) AS due FROM webhook_events WHERE delivered_at IS NULL AND gave_up_at IS NULL")
        return row["due"] if row else None

    def record_webhook_attempt(
        self,
        event_id: str,
        status_code: int | None,
        error: str | None,
        duration_ms: float,
        delivered: bool,
        next_attempt_at: float | None,
    ) -> None:
        now = time.time()
        with self.transaction():
            self._write(
                "INSERT INTO webhook_attempts (event_id, attempted_at, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?)",
                (event_id, now, status_code, error, duration_ms),
            )
            self._write(
                """UPDATE webhook_events SET attempts = attempts + 1, delivered_at = ?, next_attempt_at = ?, gave_up_at = ?
                   WHERE id = ?""",
                (now if delivered else None, next_attempt_at, None if delivered or next_attempt_at else now, event_id),
            )

    def webhook_events_for(self, session_id: str) -> list[dict[str, Any]]:
        events = self._all(
            "SELECT id, type, url, created_at, attempts, delivered_at, gave_up_at, next_attempt_at FROM webhook_events WHERE session_id = ? ORDER BY created_at",
            (session_id,),
        )
        for event in events:
            event["attempt_log"] = self._all(
                "SELECT attempted_at, status_code, error, duration_ms FROM webhook_attempts WHERE event_id = ? ORDER BY id",
                (event["id"],),
            )
        return events

    # -- audit log --------------------------------------------------------------------------------

    def audit(self, actor: str, action: str, session_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
        self._write(
            "INSERT INTO audit_log (at, actor, action, session_id, detail) VALUES (?, ?, ?, ?, ?)",
            (time.time(), actor, action, session_id, json.dumps(detail, sort_keys=True) if detail else None),
        )

    def audit_for(self, session_id: str) -> list[dict[str, Any]]:
        rows = self._all("SELECT at, actor, action, detail FROM audit_log WHERE session_id = ? ORDER BY id", (session_id,))
        for row in rows:
            row["detail"] = json.loads(row["detail"]) if row["detail"] else None
        return rows


class _Transaction:
    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> None:
        self.store._lock.acquire()
        self.store._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, traceback) -> None:
        try:
            self.store._db.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self.store._lock.release()


def _statements(script: str) -> list[str]:
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _api_key(row: dict[str, Any]) -> ApiKey:
    return ApiKey(row["id"], row["name"], row["prefix"], bool(row["sandbox"]), row["created_at"], row["revoked_at"])


def _encode_fields(fields: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in fields.items():
        if name not in Session.__dataclass_fields__ and name not in {"token_hash", "browser_key_hash"}:
            raise ValueError(f"unknown session field {name}")
        if name in Session.JSON_FIELDS and value is not None:
            value = json.dumps(value, sort_keys=True)
        elif isinstance(value, Status):
            value = value.value
        elif isinstance(value, bool):
            value = int(value)
        out[name] = value
    return out


def _session_values(session: Session) -> dict[str, Any]:
    return _encode_fields({name: getattr(session, name) for name in Session.__dataclass_fields__})
