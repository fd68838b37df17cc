"""The storage layer on a real SQLite file: migrations, WAL, encryption at rest, atomic status moves."""

from __future__ import annotations

import os
import sqlite3
import stat
import time

import pytest

from server.sessions import Session, Status, TransitionError
from server.storage.crypto import Cipher, CryptoKeyError, load_or_create_key
from server.storage.store import ConflictError, Store


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "db.sqlite3", Cipher(os.urandom(32)))
    yield store
    store.close()


def new_session(store: Store, session_id: str = "ses_1", **changes) -> Session:
    if not store.api_keys():
        store.create_api_key("shop", "rn_test_abcdef", "keyhash", True, b"whsec_x")
    now = time.time()
    fields = dict(
        id=session_id, api_key_id=1, sandbox=True, reference_id="ref", status=Status.CREATED,
        created_at=now, updated_at=now, expires_at=now + 900, challenge_count=3, max_attempts=3,
    )
    fields.update(changes)
    session = Session(**fields)
    store.insert_session(session, token_hash=f"hash-{session_id}")
    return session


def test_schema_is_migrated_once_in_wal_mode(tmp_path):
    path = tmp_path / "db.sqlite3"
    Store(path, Cipher(os.urandom(32))).close()
    again = Store(path, Cipher(os.urandom(32)))
    again.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_evidence_is_encrypted_and_bound_to_its_row(store, tmp_path):
    new_session(store)
    secret = b"\xff\xd8\xff face crop bytes " * 20
    store.put_evidence("ses_1", "reference_face", secret)
    assert store.evidence("ses_1", "reference_face") == secret
    raw = (tmp_path / "db.sqlite3").read_bytes() + (tmp_path / "db.sqlite3-wal").read_bytes()
    assert b"face crop bytes" not in raw
    # A sealed blob moved to another session or kind does not open.
    db = sqlite3.connect(tmp_path / "db.sqlite3")
    sealed = db.execute("SELECT sealed FROM evidence").fetchone()[0]
    with pytest.raises(CryptoKeyError):
        store.cipher.open(sealed, "evidence:ses_2:reference_face")


def test_wrong_key_cannot_read_evidence(tmp_path):
    path = tmp_path / "db.sqlite3"
    first = Store(path, Cipher(os.urandom(32)))
    new_session(first)
    first.put_evidence("ses_1", "reference_embedding", b"\x00" * 2048)
    first.close()
    second = Store(path, Cipher(os.urandom(32)))
    with pytest.raises(CryptoKeyError):
        second.evidence("ses_1", "reference_embedding")
    second.close()


def test_generated_keys_are_private(tmp_path):
    key = load_or_create_key(tmp_path / "keys" / "evidence.key")
    assert len(key) == 32 and load_or_create_key(tmp_path / "keys" / "evidence.key") == key
    assert stat.S_IMODE((tmp_path / "keys" / "evidence.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700


def test_status_moves_are_atomic_and_checked(store):
    new_session(store)
    moved = store.move_session("ses_1", Status.CREATED, Status.CONSENTED)
    assert moved.status == Status.CONSENTED
    with pytest.raises(ConflictError):
        store.move_session("ses_1", Status.CREATED, Status.CONSENTED)
    with pytest.raises(TransitionError):
        store.move_session("ses_1", Status.CONSENTED, Status.APPROVED)
    final = store.move_session("ses_1", Status.CONSENTED, Status.FAILED, failure_reason="redacted")
    assert final.finished_at is not None and final.failure_reason == "redacted"


def test_link_token_is_claimed_once(store):
    new_session(store)
    assert store.session_by_token_hash("hash-ses_1").id == "ses_1"
    assert store.claim_token("ses_1", "browser-a")
    assert not store.claim_token("ses_1", "browser-b")
    assert store.session_by_browser_key_hash("browser-a").id == "ses_1"
    assert store.session_by_browser_key_hash("browser-b") is None


def test_purge_and_result_retention(store):
    new_session(store, "ses_old")
    new_session(store, "ses_new")
    store.put_evidence("ses_old", "reference_face", b"x")
    store.put_evidence("ses_new", "reference_face", b"y")
    assert sorted(store.purge_evidence_before(time.time() + 1)) == ["ses_new", "ses_old"]
    assert store.evidence_kinds("ses_old") == [] and store.session("ses_old").evidence_purged_at
    store.move_session("ses_old", Status.CREATED, Status.EXPIRED)
    assert store.delete_finished_sessions_before(time.time() + 1) == 1
    assert store.session("ses_old") is None and store.session("ses_new") is not None


def test_webhook_outbox_rows(store):
    new_session(store)
    store.add_webhook_event("evt_1", "ses_1", 1, "session.approved", "https://example.com/hook", "{}")
    assert [e["id"] for e in store.due_webhook_events(time.time() + 1)] == ["evt_1"]
    store.record_webhook_attempt("evt_1", 500, "HTTP 500", 12.0, delivered=False, next_attempt_at=time.time() + 60)
    assert store.due_webhook_events(time.time() + 1) == []
    store.record_webhook_attempt("evt_1", 200, None, 8.0, delivered=True, next_attempt_at=None)
    event = store.webhook_events_for("ses_1")[0]
    assert event["attempts"] == 2 and event["delivered_at"] and len(event["attempt_log"]) == 2
