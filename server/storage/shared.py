"""What instances sharing one database agree on through it: who is alive, which live checks are whose,
who delivers which webhook (a lease), rate limits, and that they all hold the same secrets.

Their moments (heartbeats, leases, buckets) are on one clock, the cluster's (`SharedState.now`): the
database's, read at each heartbeat and advanced by this machine's monotonic clock in between, so that
the wall clock of one machine jumping (a bad NTP step, a VM resumed) moves nothing the others compare.

The SQL is the portable dialect of server/storage/database.py; on SQLite (one writer at a time) every
statement here is atomic by itself, on PostgreSQL the webhook claim skips rows another instance has locked.
"""

from __future__ import annotations

import base64
import logging
import secrets
import time

from ..config import ConfigError
from .store import Store

log = logging.getLogger(__name__)
MISSED_BEATS = 3  # an instance silent this many heartbeats is gone
END_CHANNEL = "realname_end"  # PostgreSQL NOTIFY channel: "<owner> <session id> <reason>", end that live check
LINE_CHANNEL = "realname_line"  # PostgreSQL NOTIFY channel: "<instance>", a place is free there (the shared line)


class SharedState:
    def __init__(self, store: Store, instance_id: str, heartbeat_s: float = 10.0) -> None:
        self.store = store
        self.instance_id = instance_id
        self.heartbeat_s = heartbeat_s
        self.incarnation = secrets.token_hex(8)
        self._last_beat: float | None = None
        self._clock: tuple[float, float] | None = None  # (the database's time, time.monotonic()) when last read

    def now(self) -> float:
        """The cluster's time (Unix seconds)."""
        if self._clock is None:
            self.read_clock()
        assert self._clock is not None
        read, at = self._clock
        return read + (time.monotonic() - at)

    def read_clock(self) -> None:
        before = time.monotonic()
        read = self.store.database_clock()
        self._clock = (read, (before + time.monotonic()) / 2)

    # -- instances --------------------------------------------------------------------------------

    def heartbeat(self, now: float | None = None) -> bool:
        """Mark this instance alive. False (and an error logged) when another process beat under the same
        id since this one last did: both would take the other's live checks and webhook claims for their own."""
        if now is None:
            self.read_clock()
            now = self.now()
        row = self.store._one("SELECT incarnation, heartbeat_at FROM instances WHERE id = ?", (self.instance_id,))
        alone = row is None or self._last_beat is None or row["incarnation"] == self.incarnation or row["heartbeat_at"] <= self._last_beat
        if not alone:
            log.error("another process runs as instance %r: give every instance its own REALNAME_INSTANCE_ID", self.instance_id)
        self.store._write(
            """INSERT INTO instances (id, started_at, heartbeat_at, incarnation) VALUES (?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, incarnation = excluded.incarnation""",
            (self.instance_id, now, now, self.incarnation),
        )
        self._last_beat = now
        return alone

    def alive_instances(self, now: float | None = None) -> set[str]:
        now = self.now() if now is None else now
        rows = self.store._all("SELECT id FROM instances WHERE heartbeat_at >= ?", (now - MISSED_BEATS * self.heartbeat_s,))
        return {row["id"] for row in rows}

    def orphaned_checks(self, include_own: bool, now: float | None = None) -> set[str]:
        """Live or processing sessions nobody alive holds: no owner recorded, an owner that stopped
        beating, and (`include_own`, at start-up) this instance's from before its restart."""
        now = self.now() if now is None else now
        rows = self.store._all(
            """SELECT id FROM sessions WHERE status IN ('live', 'processing') AND (
                   owner IS NULL OR (owner = ? AND ? = 1)
                   OR (owner != ? AND owner NOT IN (SELECT id FROM instances WHERE heartbeat_at >= ?)))""",
            (self.instance_id, int(include_own), self.instance_id, now - MISSED_BEATS * self.heartbeat_s),
        )
        return {row["id"] for row in rows}

    def owner_of(self, session_id: str) -> str | None:
        row = self.store._one("SELECT owner FROM sessions WHERE id = ?", (session_id,))
        return row["owner"] if row else None

    def ask_owner_to_end(self, owner: str, session_id: str, reason: str = "redacted") -> None:
        """A notice to the instance running the session's live check (PostgreSQL only): why it ends,
        `redacted` (a DELETE) or `bye` (the page left through another instance)."""
        self.store._write("SELECT pg_notify(?, ?)", (END_CHANNEL, f"{owner} {session_id} {reason}"))

    def tell_place_free(self) -> None:
        """A notice to the other instances: a place is free here, their customers next in line may ask now."""
        self.store._write("SELECT pg_notify(?, ?)", (LINE_CHANNEL, self.instance_id))

    # -- webhook leases ---------------------------------------------------------------------------

    def claim_webhook_events(self, event_ids: list[str], lease_s: float, now: float | None = None) -> set[str]:
        """Of `event_ids`, those this instance now holds for `lease_s`: undelivered and not held by
        another instance whose lease still runs. A crashed instance's claims come back when theirs end."""
        if not event_ids:
            return set()
        now = self.now() if now is None else now
        marks = ", ".join("?" for _ in event_ids)
        rows = self.store._all(
            f"""UPDATE webhook_events SET claimed_by = ?, claimed_until = ?
                WHERE id IN (SELECT id FROM webhook_events WHERE id IN ({marks})
                             AND delivered_at IS NULL AND gave_up_at IS NULL
                             AND (claimed_until IS NULL OR claimed_until < ? OR claimed_by = ?){self.store._db.skip_locked})
                RETURNING id""",
            (self.instance_id, now + lease_s, *event_ids, now, self.instance_id),
        )
        return {row["id"] for row in rows}

    def release_own_claims(self) -> int:
        """At start-up: what this instance held before it stopped is free at once (instance ids are unique)."""
        return self.store._write(
            "UPDATE webhook_events SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ? AND delivered_at IS NULL", (self.instance_id,)
        ).rowcount

    # -- rate limits ------------------------------------------------------------------------------

    def take_token(self, key: str, per_minute: float, burst: float, now: float | None = None) -> float:
        """A token bucket in one statement: 0 if allowed (and counted), else the seconds to wait."""
        now = self.now() if now is None else now
        key = self._bucket_key(key)
        rate = per_minute / 60.0
        refill = "(rate_buckets.tokens + (? - rate_buckets.updated_at) * ?)"  # now, rate
        level = f"(CASE WHEN {refill} > ? THEN ? ELSE {refill} END)"  # capped at burst
        level_params = (now, rate, burst, burst, now, rate)
        row = self.store._one(
            f"""INSERT INTO rate_buckets (key, tokens, allowed, updated_at, full_at) VALUES (?, ?, 1, ?, ?)
                ON CONFLICT (key) DO UPDATE SET
                    tokens = CASE WHEN {level} >= 1 THEN {level} - 1 ELSE {level} END,
                    allowed = CASE WHEN {level} >= 1 THEN 1 ELSE 0 END,
                    updated_at = excluded.updated_at, full_at = ?
                RETURNING tokens, allowed""",
            (key, burst - 1, now, _full_at(now, 1, rate), *level_params * 4, _full_at(now, burst, rate)),
        )
        assert row is not None  # RETURNING gives the row
        if row["allowed"]:
            return 0.0
        return (1.0 - row["tokens"]) / rate if rate > 0 else 60.0

    def forget_full_buckets(self, now: float | None = None) -> int:
        """Rate buckets full again and failure counts past their window and pause: they change nothing."""
        now = self.now() if now is None else now
        buckets = self.store._write("DELETE FROM rate_buckets WHERE full_at < ?", (now,)).rowcount
        return buckets + self.store._write("DELETE FROM failure_counts WHERE forget_at < ?", (now,)).rowcount

    def record_failure(self, key: str, limit: int, window_s: float, pause_s: float, now: float | None = None) -> None:
        """One more failure of `key`; the `limit`-th within `window_s` of the first pauses it for `pause_s`.
        (A window that starts at its first failure: the in-memory FailureLimiter's is sliding.)"""
        now = self.now() if now is None else now
        fresh = "(failure_counts.window_start < ?)"  # since
        count = f"(CASE WHEN {fresh} THEN 1 ELSE failure_counts.failures + 1 END)"
        reached = f"({count} >= ?)"  # limit
        since = now - window_s
        reached_params = (since, limit)
        self.store._write(
            f"""INSERT INTO failure_counts (key, failures, window_start, paused_until, forget_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (key) DO UPDATE SET
                    failures = CASE WHEN {reached} THEN 0 ELSE {count} END,
                    window_start = CASE WHEN {fresh} OR {reached} THEN excluded.window_start ELSE failure_counts.window_start END,
                    paused_until = CASE WHEN {reached} THEN ? ELSE failure_counts.paused_until END,
                    forget_at = excluded.forget_at""",
            (
                self._bucket_key(key), 0 if limit <= 1 else 1, now, now + pause_s if limit <= 1 else 0.0, now + window_s + pause_s,
                *reached_params, since,  # failures
                since, *reached_params,  # window_start
                *reached_params, now + pause_s,  # paused_until
            ),
        )  # fmt: skip

    def paused_for(self, key: str, now: float | None = None) -> float:
        now = self.now() if now is None else now
        row = self.store._one("SELECT paused_until FROM failure_counts WHERE key = ?", (self._bucket_key(key),))
        return max(0.0, row["paused_until"] - now) if row else 0.0

    def _bucket_key(self, key: str) -> str:
        return self.store.cipher.lookup_hash(key, "rate_bucket")  # client addresses are not kept in clear

    # -- secrets every instance must share --------------------------------------------------------

    def check_same_secret(self, name: str, secret: bytes, hint: str) -> None:
        """The first instance records a keyed hash of `secret`; one started with another is refused."""
        digest = self.store.cipher.lookup_hash(base64.b64encode(secret).decode(), f"shared_secret:{name}")
        self.store._write("INSERT INTO shared_secrets (name, digest) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (name, digest))
        row = self.store._one("SELECT digest FROM shared_secrets WHERE name = ?", (name,))
        if row is None or row["digest"] != digest:
            raise ConfigError(f"this instance's {name} differs from the one the other instances use: {hint}")


def _full_at(now: float, missing: float, rate: float) -> float:
    """When a bucket `missing` tokens short is full again (an upper bound: it may have had more)."""
    return now + missing / rate if rate > 0 else now + 60.0


def cluster_time(shared: SharedState | None) -> float:
    """The cluster's time when instances share the database, else this machine's."""
    return shared.now() if shared is not None else time.time()
