"""Running as one of several instances on one PostgreSQL database: a name, a heartbeat, taking over the
live checks of an instance that stopped, rate and failure limits counted in the database, the same secrets everywhere,
and notices from the others (LISTEN/NOTIFY): end a live check held here that was deleted there."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable

from .config import Settings
from .flow.lifecycle import Lifecycle
from .flow.registry import LiveRegistry
from .storage.database import DatabaseUnavailable
from .storage.shared import END_CHANNEL, LINE_CHANNEL, MISSED_BEATS, SharedState

log = logging.getLogger(__name__)
NOTICE_REASONS = ("redacted", "bye")  # why another instance asks this one to end a live check


def instance_id(settings: Settings) -> str:
    """The configured name, else host and port: stable across restarts, distinct for two instances on one host."""
    return settings.instance_id or f"{socket.gethostname()}:{settings.port}"


class SharedRateLimiter:
    """RateLimiter's contract with the bucket in the database, so a key is limited once, not once per instance."""

    def __init__(self, shared: SharedState, name: str, per_minute: int, burst: int | None = None) -> None:
        self.shared = shared
        self.name = name
        self.per_minute = per_minute
        self.burst = float(burst if burst is not None else max(1, per_minute // 2))

    def check(self, key: str) -> float:
        return self.shared.take_token(f"{self.name}:{key}", self.per_minute, self.burst)


class SharedFailureLimiter:
    """FailureLimiter's contract with the counts in the database: a customer paused on one instance is
    paused on all."""

    def __init__(self, shared: SharedState, limit: int, window_s: float, pause_s: float) -> None:
        self.shared = shared
        self.limit, self.window_s, self.pause_s = limit, window_s, pause_s

    def record(self, key: str) -> None:
        self.shared.record_failure(key, self.limit, self.window_s, self.pause_s)

    def paused_for(self, key: str) -> float:
        return self.shared.paused_for(key)


def check_shared_secrets(shared: SharedState, cookie_secret: bytes) -> None:
    """Refuse to start when this instance's cookie/CSRF secret is not the others' (the evidence key is
    checked by Store itself): a customer's next request may reach any instance."""
    shared.check_same_secret("cookie_secret", cookie_secret, "set REALNAME_COOKIE_SECRET to the same value on every instance")


async def keep_alive(shared: SharedState, lifecycle: Lifecycle, publish: Callable[[], None] = lambda: None) -> None:
    """Beat (and `publish` this instance's free places to the shared line); take over the checks of
    instances that stopped beating; drop rate buckets that are full again.

    After this instance could not beat on time (the database was down or stalled for everyone), the others
    could not either: their silence means nothing until they have had MISSED_BEATS rounds to beat again."""
    beating_since: float | None = None
    last_beat: float | None = None
    while True:
        try:
            shared.heartbeat()
            publish()
            now = time.monotonic()
            if beating_since is None or last_beat is None or now - last_beat > MISSED_BEATS * shared.heartbeat_s:
                beating_since = now
            last_beat = now
            if time.monotonic() - beating_since >= MISSED_BEATS * shared.heartbeat_s:
                taken = lifecycle.recover_interrupted(include_own=False)
                if taken:
                    log.warning("%d live checks of stopped instances were ended", taken)
            shared.forget_full_buckets()
        except DatabaseUnavailable:
            beating_since = None
            log.warning("heartbeat: the database cannot be reached")
        except Exception:
            log.exception("heartbeat round failed")
        await asyncio.sleep(shared.heartbeat_s)


async def follow_notices(database_url: str, shared: SharedState, live: LiveRegistry, place_free: Callable[[], None] = lambda: None) -> None:
    """End the live checks other instances ask this one to end (a DELETE or a bye that reached them); on a
    place free elsewhere, wake the answers held here for customers next in the shared line (`place_free`)."""
    import psycopg

    while True:
        try:
            async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
                await connection.execute(f"LISTEN {END_CHANNEL}")
                await connection.execute(f"LISTEN {LINE_CHANNEL}")
                async for notice in connection.notifies():
                    if notice.channel == LINE_CHANNEL:
                        if notice.payload != shared.instance_id:
                            place_free()
                        continue
                    owner, _, rest = notice.payload.partition(" ")
                    session_id, _, reason = rest.partition(" ")
                    attempt = live.get(session_id) if owner == shared.instance_id else None
                    if attempt is not None:
                        await attempt.connection.end(reason if reason in NOTICE_REASONS else "redacted")
        except psycopg.OperationalError:
            log.warning("lost the PostgreSQL connection that receives notices; reconnecting")
            await asyncio.sleep(1.0)
