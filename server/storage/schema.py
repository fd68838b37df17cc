"""Schema migrations, applied in order and recorded in schema_migrations. Append only; never edit one.

A step is SQL, or a `Rewrite` naming row rewriting that needs code (encryption); the store runs it in
the same transaction as the version's record.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rewrite:
    name: str  # Store implements it as `_rewrite_<name>`


MIGRATIONS: list[str | Rewrite] = [
    # 1: the initial schema
    """
    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        sandbox INTEGER NOT NULL,
        webhook_secret BLOB NOT NULL,  -- AES-GCM sealed
        created_at REAL NOT NULL,
        revoked_at REAL
    );

    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        api_key_id INTEGER NOT NULL REFERENCES api_keys(id),
        sandbox INTEGER NOT NULL,
        reference_id TEXT,
        merchant_name TEXT,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        challenge_count INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        locale TEXT,
        callback_url TEXT,
        redirect_url TEXT,
        fixed_challenges TEXT,
        failure_reason TEXT,
        token_hash TEXT UNIQUE,
        token_used_at REAL,
        browser_key_hash TEXT UNIQUE,
        finished_at REAL,
        has_reference INTEGER NOT NULL DEFAULT 0,
        reference_source TEXT,
        liveness TEXT,
        match TEXT,
        consent TEXT,
        live_stats TEXT,
        redacted_at REAL,
        evidence_purged_at REAL
    );
    CREATE INDEX sessions_status ON sessions(status, expires_at);
    CREATE INDEX sessions_created ON sessions(created_at);

    CREATE TABLE evidence (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        sealed BLOB NOT NULL,  -- AES-GCM, authenticated with session id and kind
        created_at REAL NOT NULL,
        PRIMARY KEY (session_id, kind)
    );
    CREATE INDEX evidence_created ON evidence(created_at);

    CREATE TABLE webhook_events (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        api_key_id INTEGER NOT NULL,
        type TEXT NOT NULL,
        url TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at REAL NOT NULL,
        next_attempt_at REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        delivered_at REAL,
        gave_up_at REAL
    );
    CREATE INDEX webhook_events_due ON webhook_events(next_attempt_at) WHERE delivered_at IS NULL AND gave_up_at IS NULL;
    CREATE INDEX webhook_events_session ON webhook_events(session_id);

    CREATE TABLE webhook_attempts (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
        attempted_at REAL NOT NULL,
        status_code INTEGER,
        error TEXT,
        duration_ms REAL
    );
    CREATE INDEX webhook_attempts_event ON webhook_attempts(event_id);

    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        session_id TEXT,
        detail TEXT
    );
    CREATE INDEX audit_session ON audit_log(session_id, at);

    """,
    # 2: merchant accounts own sessions and keys. Each existing key becomes its own merchant (merging keys
    # that share a name could show one shop's sessions to another); a later duplicate name gets its prefix.
    """
    CREATE TABLE merchants (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL,  -- what the hosted pages show the customer
        created_at REAL NOT NULL
    );
    INSERT INTO merchants (id, name, display_name, created_at)
        SELECT k.id,
               CASE WHEN EXISTS (SELECT 1 FROM api_keys o WHERE o.name = k.name AND o.id < k.id)
                    THEN k.name || ' (' || k.prefix || ')' ELSE k.name END,
               k.name, k.created_at
        FROM api_keys k;
    ALTER TABLE api_keys ADD COLUMN merchant_id INTEGER REFERENCES merchants(id);
    UPDATE api_keys SET merchant_id = id;
    CREATE UNIQUE INDEX api_keys_merchant_name ON api_keys(merchant_id, name);
    ALTER TABLE sessions ADD COLUMN merchant_id INTEGER REFERENCES merchants(id);
    UPDATE sessions SET merchant_id = api_key_id;
    CREATE INDEX sessions_merchant ON sessions(merchant_id, created_at);
    UPDATE sessions SET merchant_name = NULL;
    """,
    # 3: what identifies a customer is sealed at rest (reference_id, URLs, webhook bodies); a keyed hash
    # of reference_id allows an exact lookup without storing it.
    """
    ALTER TABLE sessions ADD COLUMN reference_hash TEXT;
    CREATE INDEX sessions_reference ON sessions(merchant_id, reference_hash);
    """,
    Rewrite("seal_customer_data"),
    # 5: a value sealed with the key in use, so another key is refused at start-up rather than at the first read
    """
    CREATE TABLE key_check (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        sealed BLOB NOT NULL
    );
    """,
    # 6: several instances on one database: who is alive, who holds a live check, who is delivering a
    # webhook (until when), shared rate and failure limits, and digests proving every instance has the
    # same secrets.
    """
    CREATE TABLE instances (
        id TEXT PRIMARY KEY,
        started_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        incarnation TEXT NOT NULL  -- random per process: two processes under one id show up
    );
    ALTER TABLE sessions ADD COLUMN owner TEXT;  -- the instance holding its live check
    ALTER TABLE webhook_events ADD COLUMN claimed_by TEXT;
    ALTER TABLE webhook_events ADD COLUMN claimed_until REAL;
    CREATE TABLE rate_buckets (
        key TEXT PRIMARY KEY,
        tokens REAL NOT NULL,
        allowed INTEGER NOT NULL,  -- whether the last request was let through
        updated_at REAL NOT NULL,
        full_at REAL NOT NULL  -- when the bucket is full again and the row can go
    );
    CREATE INDEX rate_buckets_full ON rate_buckets(full_at);
    CREATE TABLE failure_counts (
        key TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,  -- since window_start
        window_start REAL NOT NULL,
        paused_until REAL NOT NULL,
        forget_at REAL NOT NULL  -- when the row no longer matters
    );
    CREATE TABLE shared_secrets (
        name TEXT PRIMARY KEY,
        digest TEXT NOT NULL  -- keyed hash of the secret every instance must share
    );
    """,
    # 7: the operator console: operator accounts of a merchant, their signed-in sessions (only a hash of the
    # cookie's token), review votes (four-eyes) and the decision recorded on the session.
    """
    ALTER TABLE sessions ADD COLUMN review TEXT;
    CREATE TABLE operators (
        id INTEGER PRIMARY KEY,
        merchant_id INTEGER NOT NULL REFERENCES merchants(id),
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,  -- scrypt$n$r$p$salt$hash
        totp_secret BLOB,  -- AES-GCM sealed; NULL without TOTP
        totp_last_step INTEGER NOT NULL DEFAULT 0,  -- a code is accepted once
        failed_signins INTEGER NOT NULL DEFAULT 0,
        locked_until REAL,
        created_at REAL NOT NULL,
        disabled_at REAL
    );
    CREATE UNIQUE INDEX operators_merchant_name ON operators(merchant_id, name);
    CREATE TABLE operator_sessions (
        token_hash TEXT PRIMARY KEY,
        operator_id INTEGER NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX operator_sessions_expiry ON operator_sessions(expires_at);
    CREATE TABLE review_votes (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        operator_id INTEGER NOT NULL REFERENCES operators(id),
        decision TEXT NOT NULL,
        reason TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX review_votes_session ON review_votes(session_id);
    CREATE INDEX audit_action ON audit_log(action, at);
    """,
    # 8: the ID document read from the reference photo, and what the merchant expected it to say (both
    # sealed JSON, like the other customer data)
    """
    ALTER TABLE sessions ADD COLUMN expected BLOB;
    ALTER TABLE sessions ADD COLUMN document BLOB;
    """,
    # 9: desktop-to-phone handoffs: a short single-use link that binds the session to the phone; the
    # desktop that asked for it keeps following the check through its own browser key.
    """
    CREATE TABLE handoffs (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        token_hash TEXT NOT NULL UNIQUE,
        watcher_key_hash TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        claimed_at REAL
    );
    CREATE INDEX handoffs_session ON handoffs(session_id);
    CREATE INDEX handoffs_watcher ON handoffs(watcher_key_hash);
    """,
    # 10: the signed receipt of a final decision (a compact JWS; hashes only, kept after redaction)
    """
    ALTER TABLE sessions ADD COLUMN receipt TEXT;
    """,
    # 11: a merchant's privacy choices: its retention mode ('minimal': no biometric data outlives the decision) and the
    # https link to another way of verifying (e.g. in a shop) that the consent page offers
    """
    ALTER TABLE merchants ADD COLUMN retention TEXT NOT NULL DEFAULT 'standard';
    ALTER TABLE merchants ADD COLUMN in_person_url TEXT;
    """,
    # 12: the origins a merchant's pages may frame the hosted pages from (the widget), space-separated
    """
    ALTER TABLE merchants ADD COLUMN frame_origins TEXT NOT NULL DEFAULT '';
    """,
    # 13: the face gallery (1:N), opt-in per merchant: templates stored under the gallery key's rotation
    # (on SQLite in `template`; on PostgreSQL in a pgvector column, migration 14), the merchant's
    # blocklist beside them, keyed hashes of the document number and reference for the duplicate checks,
    # and a digest of the gallery key so another key is refused at start-up.
    """
    CREATE TABLE gallery (
        id INTEGER PRIMARY KEY,
        merchant_id INTEGER NOT NULL REFERENCES merchants(id),
        sandbox INTEGER NOT NULL,
        session_id TEXT REFERENCES sessions(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,  -- enrolled (an approved, consenting customer) or blocked (an operator's blocklist)
        document_hash TEXT,
        reference_hash TEXT,
        reason BLOB,  -- AES-GCM sealed: why an operator blocked the face
        template BLOB,  -- float32, rotated; NULL on PostgreSQL (see `embedding`)
        created_by TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX gallery_partition ON gallery(merchant_id, sandbox, kind);
    CREATE INDEX gallery_session ON gallery(session_id);
    CREATE INDEX gallery_document ON gallery(merchant_id, document_hash);
    CREATE INDEX gallery_created ON gallery(created_at);
    CREATE TABLE gallery_key_check (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        digest TEXT NOT NULL
    );
    ALTER TABLE merchants ADD COLUMN gallery INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE merchants ADD COLUMN gallery_action TEXT NOT NULL DEFAULT 'review';
    ALTER TABLE merchants ADD COLUMN document_cap INTEGER NOT NULL DEFAULT 5;
    ALTER TABLE sessions ADD COLUMN document_hash TEXT;
    CREATE INDEX sessions_document ON sessions(merchant_id, document_hash);
    """,
    # 14: on PostgreSQL, the templates in a pgvector column with an HNSW index (cosine); nothing on SQLite
    Rewrite("gallery_vectors"),
    # 15: one waiting line for the instances sharing a database (storage/waiting_line.py): the places in
    # it (customers' keys as keyed hashes), the places held on another instance for a customer admitted
    # there, and what each instance publishes of its room and live checks, with the address others reach it at
    """
    CREATE TABLE waiting_line (
        session_id TEXT PRIMARY KEY,
        keys TEXT NOT NULL,
        joined_at REAL NOT NULL,
        asked_at REAL NOT NULL,
        retry_s REAL NOT NULL,
        asks INTEGER NOT NULL
    );
    CREATE TABLE line_places (
        session_id TEXT PRIMARY KEY,
        instance TEXT NOT NULL,
        placed_at REAL NOT NULL
    );
    ALTER TABLE instances ADD COLUMN url TEXT;
    ALTER TABLE instances ADD COLUMN room INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE instances ADD COLUMN live INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE instances ADD COLUMN capacity_at REAL NOT NULL DEFAULT 0;
    """,
    # 16: each decided check's movement fingerprint (spoof/replay_fingerprint.py, sealed), found by merchant
    # and key kind for the replayed-check search (storage/check_fingerprints.py); erased with the evidence
    """
    CREATE TABLE check_fingerprints (
        session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
        merchant_id INTEGER NOT NULL,
        sandbox INTEGER NOT NULL,
        sealed BLOB NOT NULL,  -- AES-GCM, authenticated with the session id
        created_at REAL NOT NULL
    );
    CREATE INDEX check_fingerprints_recent ON check_fingerprints(merchant_id, sandbox, created_at);
    """,
]
