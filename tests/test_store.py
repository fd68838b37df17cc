"""The storage layer on a real SQLite file and a real PostgreSQL database: migrations, WAL, encryption at
rest, atomic status moves."""

from __future__ import annotations

import os
import sqlite3
import stat
import time

import pytest

from server.config import ConfigError
from server.sessions import Session, Status, TransitionError
from server.storage.crypto import Cipher, CryptoKeyError, WrongKeyError, load_or_create_key
from server.storage.schema import MIGRATIONS
from server.storage.store import ConflictError, DuplicateError, Store
from tests.support.postgres import BACKENDS, database_for


@pytest.fixture(params=BACKENDS)
def location(request, tmp_path):
    """A SQLite file, or a new PostgreSQL database's URL."""
    return database_for(request) or tmp_path / "db.sqlite3"


@pytest.fixture
def store(location):
    store = Store(location, Cipher(os.urandom(32)))
    yield store
    store.close()


def new_session(store: Store, session_id: str = "ses_1", **changes) -> Session:
    if not store.api_keys():
        merchant = store.create_merchant("shop", "Shop Ltd")
        store.create_api_key(merchant.id, "sandbox 1", "rn_test_abcdef", "keyhash", True, b"whsec_x")
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
    key = os.urandom(32)
    Store(path, Cipher(key)).close()
    again = Store(path, Cipher(key))
    again.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_evidence_is_encrypted_and_bound_to_its_row(store, tmp_path):
    new_session(store)
    secret = b"\xff\xd8\xff face crop bytes " * 20
    store.put_evidence("ses_1", "reference_face", secret)
    store.put_evidence("ses_1", "reference_face", secret)  # replaced, not duplicated
    assert store.evidence("ses_1", "reference_face") == secret and store.evidence_kinds("ses_1") == ["reference_face"]
    if not store.shared:
        raw = (tmp_path / "db.sqlite3").read_bytes() + (tmp_path / "db.sqlite3-wal").read_bytes()
        assert b"face crop bytes" not in raw
    # A sealed blob moved to another session or kind does not open.
    sealed = store._one("SELECT sealed FROM evidence")["sealed"]
    assert b"face crop bytes" not in sealed
    with pytest.raises(CryptoKeyError):
        store.cipher.open(sealed, "evidence:ses_2:reference_face")


def test_wrong_key_cannot_read_evidence(location):
    path = location
    key = os.urandom(32)
    first = Store(path, Cipher(key))
    new_session(first)
    first.put_evidence("ses_1", "reference_embedding", b"\x00" * 2048)
    sealed = first._one("SELECT sealed FROM evidence")["sealed"]
    first.close()
    with pytest.raises(CryptoKeyError):
        Cipher(os.urandom(32)).open(sealed, "evidence:ses_1:reference_embedding")
    # A service started with another key (a mistyped key file) stops at once with a clear message,
    # a configuration error the CLI reports without a stack trace.
    with pytest.raises(WrongKeyError, match="does not open") as refused:
        Store(path, Cipher(os.urandom(32)))
    assert isinstance(refused.value, ConfigError)
    again = Store(path, Cipher(key))
    assert again.evidence("ses_1", "reference_embedding") == b"\x00" * 2048
    again.close()


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
    assert event["url"] is None and event["body"] is None  # settled: not kept


def test_customer_fields_are_sealed_and_read_back_in_plaintext(store):
    new_session(store, reference_id="order-77", callback_url="https://shop.example/hook", redirect_url="https://shop.example/done")
    session = store.session("ses_1")
    assert (session.reference_id, session.callback_url, session.redirect_url) == ("order-77", "https://shop.example/hook", "https://shop.example/done")
    assert session.merchant_name == "Shop Ltd"  # the account's display name
    raw = tuple(store._one("SELECT reference_id, callback_url FROM sessions").values())
    assert all(isinstance(value, bytes) and b"order-77" not in value and b"shop.example" not in value for value in raw)
    # A sealed value copied to another session does not open there.
    with pytest.raises(CryptoKeyError):
        store.cipher.open(raw[0], "session:ses_2:reference_id")
    # The keyed hash finds it without storing it; another merchant's lookup does not.
    assert [s.id for s in store.sessions_by_reference(1, "order-77")] == ["ses_1"]
    assert store.sessions_by_reference(2, "order-77") == []
    store.update_session("ses_1", reference_id=None)
    assert store.sessions_by_reference(1, "order-77") == [] and store.session("ses_1").reference_id is None


def test_webhook_events_are_sealed(store):
    new_session(store)
    store.add_webhook_event("evt_1", "ses_1", 1, "session.approved", "https://shop.example/hook", '{"data":{"session":{"reference_id":"order-77"}}}')
    [event] = store.due_webhook_events(time.time() + 1)
    assert event["url"] == "https://shop.example/hook" and "order-77" in event["body"]
    assert set(event) == {"id", "session_id", "api_key_id", "merchant_id", "type", "url", "body", "created_at", "attempts"}
    assert event["merchant_id"] == 1
    url, body = store._one("SELECT url, body FROM webhook_events").values()
    assert b"shop.example" not in url and b"order-77" not in body
    store.scrub_webhook_events("ses_1")
    assert '"reference_id":null' in store.webhook_events_for("ses_1")[0]["body"]


def test_merchant_and_key_names_are_unique(store):
    merchant = store.create_merchant("acme", "Acme Mobile")
    with pytest.raises(DuplicateError):
        store.create_merchant("acme")
    store.create_api_key(merchant.id, "main", "rn_live_aaaaaa", "hash-a", False, b"s")
    with pytest.raises(DuplicateError):
        store.create_api_key(merchant.id, "main", "rn_live_bbbbbb", "hash-b", False, b"s")
    other = store.create_merchant("zeta")
    store.create_api_key(other.id, "main", "rn_live_cccccc", "hash-c", False, b"s")  # unique per merchant only
    assert [(k.merchant, k.name) for k in store.api_keys()] == [("acme", "main"), ("zeta", "main")]


def test_a_revoked_keys_webhooks_are_signed_with_the_merchants_newest_key(store):
    merchant = store.create_merchant("acme")
    old = store.create_api_key(merchant.id, "old", "rn_live_aaaaaa", "hash-a", False, b"secret-old")
    new = store.create_api_key(merchant.id, "new", "rn_live_bbbbbb", "hash-b", False, b"secret-new")
    assert store.webhook_secret(old) == b"secret-old"
    assert store.revoke_api_key(old) and not store.revoke_api_key(old)
    assert store.webhook_secret(old) == b"secret-new"
    store.revoke_api_key(new)
    assert store.webhook_secret(old) == b"secret-old"  # no active key left: the merchant may still verify with it


def test_old_databases_are_migrated_to_merchants_and_sealed(tmp_path):
    """A database at schema 1 (keys with duplicate names, plaintext customer data) keeps working."""
    path = tmp_path / "db.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO schema_migrations VALUES (1, 0)")
    for key_id, prefix in ((1, "rn_live_aaaaaa"), (2, "rn_live_bbbbbb")):
        db.execute(
            "INSERT INTO api_keys (id, name, prefix, key_hash, sandbox, webhook_secret, created_at) VALUES (?, 'Acme', ?, ?, 0, x'00', 0)",
            (key_id, prefix, f"hash-{key_id}"),
        )
    now = time.time()
    db.execute(
        """INSERT INTO sessions (id, api_key_id, sandbox, reference_id, merchant_name, status, created_at, updated_at, expires_at,
           challenge_count, max_attempts, callback_url) VALUES ('ses_old', 2, 0, 'order-legacy', 'Evil Corp', 'created', ?, ?, ?, 3, 3,
           'https://acme.example/hook')""",
        (now, now, now + 900),
    )
    db.execute(
        "INSERT INTO webhook_events (id, session_id, api_key_id, type, url, body, created_at) VALUES ('evt_old', 'ses_old', 2, 't', 'https://acme.example/hook', '{\"ref\":\"order-legacy\"}', 0)"
    )
    db.commit()
    db.close()

    store = Store(path, Cipher(os.urandom(32)))
    try:
        assert [(m.name, m.display_name) for m in store.merchants()] == [("Acme", "Acme"), ("Acme (rn_live_bbbbbb)", "Acme")]
        assert [k.merchant_id for k in store.api_keys()] == [1, 2]  # two keys stay two tenants
        session = store.session("ses_old")
        assert session.reference_id == "order-legacy" and session.callback_url == "https://acme.example/hook"
        assert session.merchant_name == "Acme"
        assert store.merchant_session("ses_old", 2) is not None and store.merchant_session("ses_old", 1) is None
        assert [s.id for s in store.sessions_by_reference(2, "order-legacy")] == ["ses_old"]
        [event] = store.webhook_events_for("ses_old")
        assert event["body"] == '{"ref":"order-legacy"}' and event["url"] == "https://acme.example/hook"
    finally:
        store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("db.sqlite3"))
    assert b"order-legacy" not in raw and b"acme.example" not in raw and b"Evil Corp" not in raw


def test_a_reader_holding_the_log_delays_its_truncation_to_the_next_write(tmp_path, caplog):
    store = Store(tmp_path / "db.sqlite3", Cipher(os.urandom(32)))
    new_session(store)
    store.put_evidence("ses_1", "reference_face", os.urandom(3000))
    wal = tmp_path / "db.sqlite3-wal"
    reader = sqlite3.connect(tmp_path / "db.sqlite3")
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM sessions").fetchone()  # a read transaction pins the log
    store.delete_evidence("ses_1")
    assert wal.stat().st_size > 0 and "could not be truncated yet" in caplog.text
    reader.rollback()
    reader.close()
    store.audit("system", "anything")
    assert wal.stat().st_size == 0
    store.close()
