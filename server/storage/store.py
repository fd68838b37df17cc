"""The one place that speaks SQL: SQLite (WAL) by default, PostgreSQL when several instances share one
database (server/storage/database.py holds both engines and the one portable dialect written here).

Calls are short (indexed lookups and single-row writes) and run on the event loop's thread.

What identifies a customer (reference_id, callback and redirect URLs, webhook URLs and bodies) is sealed
here with the evidence key, bound to its row and field; callers see plaintext. Every write that erases
something (redaction, purges) ends with the engine's traces erased (SQLite: the write-ahead log
checkpointed and truncated, so the erased bytes are neither in the log nor, thanks to secure_delete, in
the database file's free space)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..documents.outcome import document_number
from ..sessions import FINAL, Session, Status, check_transition
from .crypto import Cipher, CryptoKeyError, WrongKeyError
from .database import open_database
from .merchants import Merchant, MerchantAccounts
from .schema import MIGRATIONS, Rewrite

log = logging.getLogger(__name__)
SEALED_SESSION_FIELDS = ("reference_id", "callback_url", "redirect_url")
# Sealed too, added after the rewrite that sealed the fields above (migration 4).
SEALED_DOCUMENT_FIELDS = ("expected", "document")
KEY_CHECK = b"realname evidence key"
SESSION_SELECT = "SELECT s.*, m.display_name AS merchant_display FROM sessions s LEFT JOIN merchants m ON m.id = s.merchant_id"


class ConflictError(RuntimeError):
    """The row changed under us (e.g. the session's status moved on)."""


class DuplicateError(ValueError):
    """A name that must be unique is taken."""


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    sandbox: bool
    created_at: float
    revoked_at: float | None
    merchant_id: int
    merchant: str  # the merchant account's unique name


class Store(MerchantAccounts):
    def __init__(self, location: str | Path, cipher: Cipher) -> None:
        """`location`: a SQLite file, or a postgresql:// URL (several instances share that database)."""
        self.cipher = cipher
        self._lock = threading.RLock()
        self._forget_pending = False
        self._db = open_database(location)
        self._migrate()
        self._check_key()

    @property
    def shared(self) -> bool:
        """Other instances may be using the same database."""
        return self._db.shared

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- plumbing ---------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._lock, self._db.schema_lock():
            self._db.execute(self._db.schema("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"))
            done = {row["version"] for row in self._db.execute("SELECT version FROM schema_migrations").fetchall()}
            for version, step in enumerate(MIGRATIONS, start=1):
                if version in done:
                    continue
                self._db.begin()
                try:
                    if isinstance(step, Rewrite):
                        getattr(self, f"_rewrite_{step.name}")()
                    else:
                        for statement in _statements(step):
                            self._db.execute(self._db.schema(statement))
                    self._db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                if isinstance(step, Rewrite):
                    self._forget()  # the plaintext the rewrite replaced

    def _check_key(self) -> None:
        row = self._one("SELECT sealed FROM key_check")
        if row is None:
            self._write("INSERT INTO key_check (id, sealed) VALUES (1, ?)", (self.cipher.seal(KEY_CHECK, "key_check"),))
            return
        try:
            self.cipher.open(row["sealed"], "key_check")
        except CryptoKeyError:
            self.close()
            raise WrongKeyError(
                f"the evidence key does not open {self._db.name}: set REALNAME_EVIDENCE_KEY or REALNAME_EVIDENCE_KEY_FILE to the key it was written with"
            ) from None

    def _rewrite_seal_customer_data(self) -> None:
        for column in SEALED_SESSION_FIELDS:
            self._db.make_blob("sessions", column)
        for column in ("url", "body"):
            self._db.make_blob("webhook_events", column)
        for row in self._db.execute("SELECT id, merchant_id, reference_id, callback_url, redirect_url FROM sessions").fetchall():
            values = {name: row[name] for name in SEALED_SESSION_FIELDS}
            sealed = self._seal_session_fields(row["id"], row["merchant_id"], values)
            assignments = ", ".join(f"{name} = ?" for name in sealed)
            self._db.execute(f"UPDATE sessions SET {assignments} WHERE id = ?", (*sealed.values(), row["id"]))
        for row in self._db.execute("SELECT id, url, body FROM webhook_events").fetchall():
            self._db.execute(
                "UPDATE webhook_events SET url = ?, body = ? WHERE id = ?",
                (*self._seal_event(row["id"], row["url"], row["body"]), row["id"]),
            )
        self._db.execute("UPDATE webhook_events SET url = x'', body = x'' WHERE delivered_at IS NOT NULL OR gave_up_at IS NOT NULL")

    def _rewrite_gallery_vectors(self) -> None:
        self._db.add_vector_column("gallery", "embedding", 512)  # the face gallery's ArcFace templates

    def _write(self, sql: str, params: Iterable[Any] = ()) -> Any:
        with self._lock:
            cursor = self._db.execute(sql, tuple(params))
            if self._forget_pending:
                self._forget()
            return cursor

    def _forget(self) -> None:
        """Erased rows must not survive in the engine's files (see `Database.erase_traces`). Deferred to
        the end of a transaction; retried on the next write if a reader (e.g. the CLI) held the SQLite log."""
        with self._lock:
            if self._db.in_transaction:
                self._forget_pending = True
                return
            self._forget_pending = not self._db.erase_traces()
            if self._forget_pending:
                log.warning("the write-ahead log could not be truncated yet (another connection is reading); retrying on the next write")

    def _one(self, sql: str, params: Iterable[Any] = ()) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(sql, tuple(params)).fetchone()
        return dict(row) if row is not None else None

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, tuple(params)).fetchall()]

    def database_clock(self) -> float:
        with self._lock:
            return self._db.clock()

    def transaction(self):
        return _Transaction(self)

    # -- merchant accounts (the rest in merchants.py) ------------------------------------------------

    def create_merchant(self, name: str, display_name: str | None = None) -> Merchant:
        try:
            now = time.time()
            cursor = self._write(
                "INSERT INTO merchants (name, display_name, created_at) VALUES (?, ?, ?) RETURNING id", (name, display_name or name, now)
            )
        except self._db.integrity_error:
            raise DuplicateError(f"a merchant named {name!r} exists") from None
        return Merchant(_inserted_id(cursor), name, display_name or name, now)

    # -- API keys ---------------------------------------------------------------------------------

    def create_api_key(self, merchant_id: int, name: str, prefix: str, key_hash: str, sandbox: bool, webhook_secret: bytes) -> int:
        """A key of the merchant; its name is unique within the merchant."""
        sealed = self.cipher.seal(webhook_secret, f"webhook_secret:{key_hash}")
        try:
            cursor = self._write(
                """INSERT INTO api_keys (merchant_id, name, prefix, key_hash, sandbox, webhook_secret, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id""",
                (merchant_id, name, prefix, key_hash, int(sandbox), sealed, time.time()),
            )
        except self._db.integrity_error:
            raise DuplicateError(f"the merchant already has a key named {name!r}") from None
        return _inserted_id(cursor)

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        row = self._one(f"{API_KEY_SELECT} WHERE k.key_hash = ? AND k.revoked_at IS NULL", (key_hash,))
        return _api_key(row) if row else None

    def api_keys(self, merchant_id: int | None = None) -> list[ApiKey]:
        if merchant_id is None:
            return [_api_key(r) for r in self._all(f"{API_KEY_SELECT} ORDER BY k.id")]
        return [_api_key(r) for r in self._all(f"{API_KEY_SELECT} WHERE k.merchant_id = ? ORDER BY k.id", (merchant_id,))]

    def revoke_api_key(self, api_key_id: int) -> bool:
        cursor = self._write("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), api_key_id))
        return cursor.rowcount == 1

    def open_sessions_of_key(self, api_key_id: int) -> int:
        """Sessions the key created that have not reached a final state."""
        final = [status.value for status in FINAL]
        marks = ", ".join("?" for _ in final)
        row = self._one(f"SELECT COUNT(*) AS n FROM sessions WHERE api_key_id = ? AND status NOT IN ({marks})", (api_key_id, *final))
        return int(row["n"]) if row else 0

    def webhook_secret(self, api_key_id: int) -> bytes:
        """The secret that signs webhooks of sessions the key created: its own while it is active, else
        that of the merchant's newest active key (so a revoked, perhaps leaked, secret can be dropped)."""
        row = self._one("SELECT merchant_id, key_hash, webhook_secret, revoked_at FROM api_keys WHERE id = ?", (api_key_id,))
        if row is None:
            raise KeyError(api_key_id)
        if row["revoked_at"] is not None:
            row = self._one(
                "SELECT key_hash, webhook_secret FROM api_keys WHERE merchant_id = ? AND revoked_at IS NULL ORDER BY id DESC LIMIT 1",
                (row["merchant_id"],),
            ) or row
        return self.cipher.open(row["webhook_secret"], f"webhook_secret:{row['key_hash']}")

    # -- sessions ---------------------------------------------------------------------------------

    def insert_session(self, session: Session, token_hash: str) -> None:
        """The session belongs to its key's merchant. `merchant_name` is not stored: the hosted pages
        show the merchant account's display name, which a key holder cannot choose per session."""
        row = self._one("SELECT merchant_id FROM api_keys WHERE id = ?", (session.api_key_id,))
        if row is None:
            raise KeyError(session.api_key_id)
        fields = {name: getattr(session, name) for name in Session.__dataclass_fields__}
        fields["merchant_name"] = None
        values = self._encode(session.id, fields, row["merchant_id"])
        values.update(token_hash=token_hash, merchant_id=row["merchant_id"])
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self._write(f"INSERT INTO sessions ({columns}) VALUES ({marks})", values.values())

    def session(self, session_id: str) -> Session | None:
        return self._session_where("s.id = ?", session_id)

    def merchant_session(self, session_id: str, merchant_id: int) -> Session | None:
        """The session if it belongs to the merchant: any of its keys may read and erase it."""
        return self._session_where("s.id = ? AND s.merchant_id = ?", session_id, merchant_id)

    def sessions_by_reference(self, merchant_id: int, reference_id: str) -> list[Session]:
        """Exact lookup by the merchant's reference (sealed at rest; found through its keyed hash)."""
        rows = self._all(
            f"{SESSION_SELECT} WHERE s.merchant_id = ? AND s.reference_hash = ? ORDER BY s.created_at",
            (merchant_id, self._reference_hash(merchant_id, reference_id)),
        )
        return [self._session(r) for r in rows]

    def session_by_token_hash(self, token_hash: str) -> Session | None:
        return self._session_where("s.token_hash = ?", token_hash)

    def session_by_browser_key_hash(self, browser_key_hash: str) -> Session | None:
        return self._session_where("s.browser_key_hash = ?", browser_key_hash)

    def _session_where(self, condition: str, *params: Any) -> Session | None:
        row = self._one(f"{SESSION_SELECT} WHERE {condition}", params)
        return self._session(row) if row else None

    def claim_token(self, session_id: str, browser_key_hash: str) -> bool:
        """Mark the hosted-page token used, binding the session to one browser. False if already used."""
        cursor = self._write(
            "UPDATE sessions SET token_used_at = ?, browser_key_hash = ?, updated_at = ? WHERE id = ? AND token_used_at IS NULL",
            (time.time(), browser_key_hash, time.time(), session_id),
        )
        return cursor.rowcount == 1

    def update_session(self, session_id: str, **fields: Any) -> Session:
        fields["updated_at"] = time.time()
        values = self._encode(session_id, fields)
        assignments = ", ".join(f"{name} = ?" for name in values)
        self._write(f"UPDATE sessions SET {assignments} WHERE id = ?", [*values.values(), session_id])
        if _erases(fields):
            self._forget()
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
        values = self._encode(session_id, fields)
        assignments = ", ".join(f"{name} = ?" for name in values)
        cursor = self._write(
            f"UPDATE sessions SET {assignments} WHERE id = ? AND status = ?",
            [*values.values(), session_id, expected.value],
        )
        if cursor.rowcount != 1:
            raise ConflictError(f"session {session_id} is no longer {expected.value}")
        if _erases(fields):
            self._forget()
        return self.session(session_id)  # type: ignore[return-value]

    def take_attempt(self, session_id: str, used: int) -> bool:
        """One more attempt used, while the session waits at the live step with `used` attempts used;
        False if it has moved on or another request took one meanwhile."""
        cursor = self._write(
            "UPDATE sessions SET attempts = ?, updated_at = ? WHERE id = ? AND status = ? AND attempts = ?",
            (used + 1, time.time(), session_id, Status.ID_UPLOADED.value, used),
        )
        return cursor.rowcount == 1

    def sessions_with_status(self, statuses: Iterable[Status]) -> list[Session]:
        wanted = [s.value for s in statuses]
        marks = ", ".join("?" for _ in wanted)
        return [self._session(r) for r in self._all(f"{SESSION_SELECT} WHERE s.status IN ({marks})", wanted)]

    def sessions_to_expire(self, now: float, live_grace_s: float) -> list[Session]:
        """Unfinished sessions past their lifetime (a check under way gets `live_grace_s` more)."""
        rows = self._all(
            f"""{SESSION_SELECT} WHERE s.status IN ('created', 'consented', 'id_uploaded') AND s.expires_at < ?
               UNION ALL
               {SESSION_SELECT} WHERE s.status IN ('live', 'processing') AND s.expires_at < ?""",
            (now, now - live_grace_s),
        )
        return [self._session(r) for r in rows]

    def delete_finished_sessions_before(self, before: float) -> int:
        with self.transaction():
            ids = [r["id"] for r in self._all("SELECT id FROM sessions WHERE finished_at IS NOT NULL AND finished_at < ?", (before,))]
            for session_id in ids:
                self._write("DELETE FROM webhook_events WHERE session_id = ?", (session_id,))
                self._write("DELETE FROM sessions WHERE id = ?", (session_id,))
        if ids:
            self._forget()
        return len(ids)

    def _merchant_of(self, session_id: str) -> int | None:
        row = self._one("SELECT merchant_id FROM sessions WHERE id = ?", (session_id,))
        return row["merchant_id"] if row else None

    def _encode(self, session_id: str, fields: dict[str, Any], merchant_id: int | None = None) -> dict[str, Any]:
        values = _encode_fields(fields)
        if ("reference_id" in values or "document" in values) and merchant_id is None:
            merchant_id = self._merchant_of(session_id)  # its keyed hash is per merchant
        values.update(self._seal_session_fields(session_id, merchant_id, {k: v for k, v in values.items() if k in SEALED_SESSION_FIELDS + SEALED_DOCUMENT_FIELDS}))
        return values

    def _seal_session_fields(self, session_id: str, merchant_id: int | None, values: dict[str, str | None]) -> dict[str, Any]:
        sealed: dict[str, Any] = {name: self.cipher.seal_text(value, f"session:{session_id}:{name}") for name, value in values.items()}
        if "document" in values:
            number = document_number(json.loads(values["document"]) if values["document"] else None)
            sealed["document_hash"] = None if number is None or merchant_id is None else self.document_hash(merchant_id, number)
        if "reference_id" in values:
            reference_id = values["reference_id"]
            sealed["reference_hash"] = None if reference_id is None or merchant_id is None else self._reference_hash(merchant_id, reference_id)
        return sealed

    def _reference_hash(self, merchant_id: int, reference_id: str) -> str:
        return self.cipher.lookup_hash(reference_id, f"reference_id:{merchant_id}")

    def document_hash(self, merchant_id: int, number: str) -> str:
        """The keyed hash of a document number, per merchant (the gallery's duplicate checks and cap)."""
        return self.cipher.lookup_hash(number, f"document_number:{merchant_id}")

    def _session(self, row: dict[str, Any]) -> Session:
        data = dict(row)
        for name in SEALED_SESSION_FIELDS + SEALED_DOCUMENT_FIELDS:
            data[name] = self.cipher.open_text(data[name], f"session:{data['id']}:{name}")
        data["merchant_name"] = data.pop("merchant_display")
        return Session.from_row(data)

    # -- evidence ---------------------------------------------------------------------------------

    def put_evidence(self, session_id: str, kind: str, data: bytes) -> None:
        sealed = self.cipher.seal(data, f"evidence:{session_id}:{kind}")
        self._write(
            """INSERT INTO evidence (session_id, kind, sealed, created_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (session_id, kind) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at""",
            (session_id, kind, sealed, time.time()),
        )

    def evidence(self, session_id: str, kind: str) -> bytes | None:
        row = self._one("SELECT sealed FROM evidence WHERE session_id = ? AND kind = ?", (session_id, kind))
        return self.cipher.open(row["sealed"], f"evidence:{session_id}:{kind}") if row else None

    def receipt_facts(self, session_id: str) -> tuple[int | None, dict[str, str]]:
        """The session's merchant and the SHA-256 of each piece of its sealed evidence, as stored."""
        rows = self._all("SELECT kind, sealed FROM evidence WHERE session_id = ?", (session_id,))
        return self._merchant_of(session_id), {r["kind"]: hashlib.sha256(bytes(r["sealed"])).hexdigest() for r in rows}

    def evidence_kinds(self, session_id: str) -> list[str]:
        return [r["kind"] for r in self._all("SELECT kind FROM evidence WHERE session_id = ? ORDER BY kind", (session_id,))]

    def delete_evidence(self, session_id: str) -> int:
        """Erase the session's evidence and, with it, its check's fingerprint (storage/check_fingerprints.py)."""
        count = self._write("DELETE FROM evidence WHERE session_id = ?", (session_id,)).rowcount
        self._write("DELETE FROM check_fingerprints WHERE session_id = ?", (session_id,))
        self._forget()
        return count

    def purge_evidence_before(self, before: float) -> list[str]:
        """Erase evidence older than `before`; returns the sessions it belonged to."""
        with self.transaction():
            ids = [r["session_id"] for r in self._all("SELECT DISTINCT session_id FROM evidence WHERE created_at < ?", (before,))]
            self._write("DELETE FROM evidence WHERE created_at < ?", (before,))
            self._write("DELETE FROM check_fingerprints WHERE created_at < ?", (before,))
            now = time.time()
            for session_id in ids:
                self._write("UPDATE sessions SET evidence_purged_at = ?, has_reference = 0 WHERE id = ?", (now, session_id))
        if ids:
            self._forget()
        return ids

    # -- webhooks ---------------------------------------------------------------------------------

    def add_webhook_event(self, event_id: str, session_id: str, api_key_id: int, type_: str, url: str, body: str) -> None:
        now = time.time()
        self._write(
            """INSERT INTO webhook_events (id, session_id, api_key_id, type, url, body, created_at, next_attempt_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (event_id, session_id, api_key_id, type_, *self._seal_event(event_id, url, body), now, now),
        )

    def scrub_webhook_events(self, session_id: str) -> None:
        """Remove the merchant's reference from queued and past event bodies of a redacted session."""
        with self.transaction():
            for row in self._all("SELECT id, url, body FROM webhook_events WHERE session_id = ? AND body != x''", (session_id,)):
                event = self._open_event(row)
                body = json.loads(event["body"])
                session = body.get("data", {}).get("session", {})
                session["reference_id"] = None
                if session.get("document") is not None:
                    session["document"] = None
                _, sealed = self._seal_event(row["id"], None, json.dumps(body, separators=(",", ":"), sort_keys=True))
                self._write("UPDATE webhook_events SET body = ? WHERE id = ?", (sealed, row["id"]))
        self._forget()

    def due_webhook_events(self, now: float, limit: int = 20) -> list[dict[str, Any]]:
        rows = self._all(
            """SELECT e.id, e.session_id, e.api_key_id, k.merchant_id, e.type, e.url, e.body, e.created_at, e.attempts
               FROM webhook_events e LEFT JOIN api_keys k ON k.id = e.api_key_id
               WHERE e.delivered_at IS NULL AND e.gave_up_at IS NULL AND e.next_attempt_at <= ?
                 AND (e.claimed_until IS NULL OR e.claimed_until < ?)
               ORDER BY e.next_attempt_at LIMIT ?""",
            (now, now, limit),
        )
        return [self._open_event(row) for row in rows]

    def _seal_event(self, event_id: str, url: str | None, body: str | None) -> tuple[bytes | None, bytes | None]:
        return self.cipher.seal_text(url, f"webhook_event:{event_id}:url"), self.cipher.seal_text(body, f"webhook_event:{event_id}:body")

    def _open_event(self, row: dict[str, Any]) -> dict[str, Any]:
        """url and body in plaintext; None once the event is settled (delivered or given up)."""
        event = dict(row)
        for name in ("url", "body"):
            if name in event:
                event[name] = self.cipher.open_text(event[name] or None, f"webhook_event:{event['id']}:{name}")
        return event

    def next_webhook_due(self) -> float | None:
        row = self._one(
            """SELECT MIN(CASE WHEN claimed_until > next_attempt_at THEN claimed_until ELSE next_attempt_at END) AS due
               FROM webhook_events WHERE delivered_at IS NULL AND gave_up_at IS NULL"""
        )  # an event another instance holds is due again when its lease ends
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
                """UPDATE webhook_events SET attempts = attempts + 1, delivered_at = ?, next_attempt_at = ?, gave_up_at = ?,
                       claimed_by = NULL, claimed_until = NULL
                   WHERE id = ?""",
                (now if delivered else None, next_attempt_at, None if delivered or next_attempt_at else now, event_id),
            )
            if delivered or next_attempt_at is None:
                # Settled: the destination and the body are no longer needed, so they are not kept.
                self._write("UPDATE webhook_events SET url = x'', body = x'' WHERE id = ?", (event_id,))

    def webhook_events_for(self, session_id: str) -> list[dict[str, Any]]:
        rows = self._all(
            """SELECT id, type, url, body, created_at, attempts, delivered_at, gave_up_at, next_attempt_at
               FROM webhook_events WHERE session_id = ? ORDER BY created_at""",
            (session_id,),
        )
        events = [self._open_event(row) for row in rows]
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
        try:
            self.store._db.begin()
        except BaseException:  # e.g. the database went away: the lock must not stay held
            self.store._lock.release()
            raise

    def __exit__(self, kind, value, traceback) -> None:
        db = self.store._db
        try:
            try:
                if kind is None:
                    db.execute("COMMIT")
                elif db.in_transaction:  # SQLite undoes a transaction itself on some errors (a full disk)
                    db.execute("ROLLBACK")
            except BaseException:
                if db.in_transaction:  # a COMMIT that failed must not leave the transaction (and its lock) open
                    with contextlib.suppress(Exception):
                        db.execute("ROLLBACK")
                raise
            if self.store._forget_pending:
                self.store._forget()
        finally:
            self.store._lock.release()


def _statements(script: str) -> list[str]:
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


API_KEY_SELECT = "SELECT k.*, m.name AS merchant FROM api_keys k JOIN merchants m ON m.id = k.merchant_id"


def _inserted_id(cursor: Any) -> int:
    """The id an `INSERT ... RETURNING id` made."""
    return int(cursor.fetchone()["id"])



def _api_key(row: dict[str, Any]) -> ApiKey:
    return ApiKey(
        row["id"], row["name"], row["prefix"], bool(row["sandbox"]), row["created_at"], row["revoked_at"], row["merchant_id"], row["merchant"]
    )


def _erases(fields: dict[str, Any]) -> bool:
    """A redaction or purge mark, or a customer field cleared."""
    marked = any(fields.get(name) is not None for name in ("redacted_at", "evidence_purged_at"))
    return marked or any(name in fields and fields[name] is None for name in SEALED_SESSION_FIELDS + SEALED_DOCUMENT_FIELDS)


def _encode_fields(fields: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in fields.items():
        if name not in Session.__dataclass_fields__ and name not in {"token_hash", "browser_key_hash", "owner"}:
            raise ValueError(f"unknown session field {name}")
        if name in Session.JSON_FIELDS and value is not None:
            value = json.dumps(value, sort_keys=True)
        elif isinstance(value, Status):
            value = value.value
        elif isinstance(value, bool):
            value = int(value)
        out[name] = value
    return out
