"""The operator console's SQL: operator accounts, their signed-in sessions, review votes, and the
merchant-scoped reads the console shows (session lists, the funnel's audit rows, webhook health).

Kept beside Store (whose connection, lock and cipher it uses) so the Store stays the sessions' contract.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..sessions import Session, Status
from .store import SESSION_SELECT, DuplicateError, Store, _inserted_id

OPERATOR_SELECT = "SELECT o.*, m.name AS merchant FROM operators o JOIN merchants m ON m.id = o.merchant_id"


@dataclass(frozen=True)
class Operator:
    id: int
    merchant_id: int
    merchant: str  # the merchant account's unique name
    name: str
    role: str  # "reviewer" or "admin"
    password_hash: str
    has_totp: bool
    failed_signins: int
    locked_until: float | None
    created_at: float
    disabled_at: float | None

    @property
    def actor(self) -> str:
        """How the audit log names this operator."""
        return f"operator:{self.merchant}/{self.name}"


@dataclass(frozen=True)
class Vote:
    operator_id: int
    operator: str
    decision: str
    reason: str
    at: float


class OperatorStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- accounts ---------------------------------------------------------------------------------

    def create(self, merchant_id: int, name: str, role: str, password_hash: str) -> Operator:
        try:
            cursor = self.store._write(
                "INSERT INTO operators (merchant_id, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
                (merchant_id, name, role, password_hash, time.time()),
            )
        except self.store._db.integrity_error:
            raise DuplicateError(f"the merchant already has an operator named {name!r}") from None
        operator = self.get(_inserted_id(cursor))
        assert operator is not None
        return operator

    def get(self, operator_id: int) -> Operator | None:
        row = self.store._one(f"{OPERATOR_SELECT} WHERE o.id = ?", (operator_id,))
        return _operator(row) if row else None

    def by_name(self, merchant_id: int, name: str) -> Operator | None:
        row = self.store._one(f"{OPERATOR_SELECT} WHERE o.merchant_id = ? AND o.name = ?", (merchant_id, name))
        return _operator(row) if row else None

    def all(self, merchant_id: int | None = None) -> list[Operator]:
        if merchant_id is None:
            return [_operator(r) for r in self.store._all(f"{OPERATOR_SELECT} ORDER BY m.name, o.name")]
        return [_operator(r) for r in self.store._all(f"{OPERATOR_SELECT} WHERE o.merchant_id = ? ORDER BY o.name", (merchant_id,))]

    def set_password(self, operator_id: int, password_hash: str) -> None:
        self.store._write("UPDATE operators SET password_hash = ? WHERE id = ?", (password_hash, operator_id))

    def set_totp(self, operator_id: int, secret: bytes | None) -> None:
        sealed = self.store.cipher.seal(secret, f"totp:{operator_id}") if secret is not None else None
        self.store._write("UPDATE operators SET totp_secret = ?, totp_last_step = 0 WHERE id = ?", (sealed, operator_id))

    def totp_secret(self, operator_id: int) -> bytes | None:
        row = self.store._one("SELECT totp_secret FROM operators WHERE id = ?", (operator_id,))
        if row is None or row["totp_secret"] is None:
            return None
        return self.store.cipher.open(row["totp_secret"], f"totp:{operator_id}")

    def use_totp_step(self, operator_id: int, step: int) -> bool:
        """Marks a code's time step used; False if it (or a later one) was used before: no replay."""
        cursor = self.store._write("UPDATE operators SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?", (step, operator_id, step))
        return cursor.rowcount == 1

    def record_success(self, operator_id: int) -> None:
        self.store._write("UPDATE operators SET failed_signins = 0, locked_until = NULL WHERE id = ?", (operator_id,))

    def set_disabled(self, operator_id: int, disabled: bool) -> None:
        self.store._write("UPDATE operators SET disabled_at = ? WHERE id = ?", (time.time() if disabled else None, operator_id))
        if disabled:
            self.end_sessions_of(operator_id)

    # -- signed-in sessions (only the hash of the cookie's token is kept) -------------------------

    def add_session(self, token_hash: str, operator_id: int, ttl_s: float) -> None:
        now = time.time()
        self.store._write("DELETE FROM operator_sessions WHERE expires_at < ?", (now,))
        self.store._write(
            "INSERT INTO operator_sessions (token_hash, operator_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (token_hash, operator_id, now, now + ttl_s),
        )

    def session_operator(self, token_hash: str) -> Operator | None:
        row = self.store._one(
            f"{OPERATOR_SELECT} JOIN operator_sessions t ON t.operator_id = o.id WHERE t.token_hash = ? AND t.expires_at > ? AND o.disabled_at IS NULL",
            (token_hash, time.time()),
        )
        return _operator(row) if row else None

    def end_session(self, token_hash: str) -> None:
        self.store._write("DELETE FROM operator_sessions WHERE token_hash = ?", (token_hash,))

    def end_sessions_of(self, operator_id: int) -> None:
        self.store._write("DELETE FROM operator_sessions WHERE operator_id = ?", (operator_id,))

    # -- review votes (four-eyes) -----------------------------------------------------------------

    def add_vote(self, session_id: str, operator_id: int, decision: str, reason: str) -> None:
        self.store._write(
            "INSERT INTO review_votes (session_id, operator_id, decision, reason, at) VALUES (?, ?, ?, ?, ?)",
            (session_id, operator_id, decision, reason, time.time()),
        )

    def votes(self, session_id: str) -> list[Vote]:
        rows = self.store._all(
            """SELECT v.operator_id, o.name AS operator, v.decision, v.reason, v.at FROM review_votes v
               JOIN operators o ON o.id = v.operator_id WHERE v.session_id = ? ORDER BY v.id""",
            (session_id,),
        )
        return [Vote(**row) for row in rows]

    # -- what the console reads, always within one merchant ---------------------------------------

    def merchant_sessions(
        self,
        merchant_id: int,
        statuses: list[Status] | None = None,
        since: float | None = None,
        until: float | None = None,
        oldest_first: bool = False,
        limit: int = 200,
    ) -> list[Session]:
        conditions, params = ["s.merchant_id = ?"], [merchant_id]
        if statuses:
            conditions.append(f"s.status IN ({', '.join('?' for _ in statuses)})")
            params += [s.value for s in statuses]
        if since is not None:
            conditions.append("s.created_at >= ?")
            params.append(since)
        if until is not None:
            conditions.append("s.created_at < ?")
            params.append(until)
        order = "ASC" if oldest_first else "DESC"
        rows = self.store._all(f"{SESSION_SELECT} WHERE {' AND '.join(conditions)} ORDER BY s.created_at {order} LIMIT ?", (*params, limit))
        return [self.store._session(row) for row in rows]

    def funnel_events(self, merchant_id: int, since: float, until: float) -> list[dict[str, Any]]:
        """(session_id, action, session's created_at) of the audit rows of sessions created in the range."""
        return self.store._all(
            """SELECT a.session_id, a.action, s.created_at FROM audit_log a JOIN sessions s ON s.id = a.session_id
               WHERE s.merchant_id = ? AND s.created_at >= ? AND s.created_at < ?
                 AND (a.action = 'session.created' OR a.action = 'link.opened' OR a.action LIKE 'status.%')""",
            (merchant_id, since, until),
        )

    def outcomes(self, merchant_id: int, since: float, until: float) -> list[dict[str, Any]]:
        return self.store._all(
            "SELECT id, status, failure_reason, created_at, finished_at FROM sessions WHERE merchant_id = ? AND created_at >= ? AND created_at < ?",
            (merchant_id, since, until),
        )

    def webhook_events(self, merchant_id: int, since: float, until: float) -> list[dict[str, Any]]:
        return self.store._all(
            """SELECT e.attempts, e.delivered_at, e.gave_up_at, e.created_at FROM webhook_events e
               JOIN sessions s ON s.id = e.session_id WHERE s.merchant_id = ? AND e.created_at >= ? AND e.created_at < ?""",
            (merchant_id, since, until),
        )


def _operator(row: dict[str, Any]) -> Operator:
    return Operator(
        id=row["id"],
        merchant_id=row["merchant_id"],
        merchant=row["merchant"],
        name=row["name"],
        role=row["role"],
        password_hash=row["password_hash"],
        has_totp=row["totp_secret"] is not None,
        failed_signins=row["failed_signins"],
        locked_until=row["locked_until"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
    )
