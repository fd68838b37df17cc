"""One waiting line for the instances sharing a database (PostgreSQL): its places, the free places each
instance publishes, and the places held for a customer admitted on another instance than the one asked.

An ask runs under one advisory lock for the whole line (`locked`): it loads the line, decides with the
same pure bookkeeping as one instance does (server/flow/admission.py), and stores the line back, so two
instances never give one free place twice or pass over the first in line. A customer admitted on
another instance gets a held place there (`line_places`) until that instance starts its check, which
counts as live there meanwhile. Customers' keys (browser, address, reference) are kept as keyed hashes.
Times are wall-clock seconds: the instances share them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .shared import MISSED_BEATS, SharedState

LINE_LOCK = 0x6C696E65  # "line": the advisory lock held while one ask reads and rewrites the line
HELD_PLACE_S = 15.0  # a held place not taken by then (the forwarded offer failed) is free again


@dataclass(frozen=True)
class Elsewhere:
    """What another instance published: checks it may carry now and those live or held for someone."""

    instance: str
    url: str
    room: int
    busy: int

    @property
    def free(self) -> int:
        return max(0, self.room - self.busy)


class SharedLine:
    def __init__(self, shared: SharedState, url: str) -> None:
        self.shared = shared
        self.store = shared.store
        self.instance_id = shared.instance_id
        self.url = url  # where the other instances reach this one

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self.store.transaction():
            self.store._one("SELECT pg_advisory_xact_lock(?)", (LINE_LOCK,))
            yield

    def hashed(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.store.cipher.lookup_hash(key, "waiting_line") for key in keys)

    def load(self) -> list[dict[str, Any]]:
        """The line's places in arrival order (inside `locked`, or for a look only)."""
        rows = self.store._all("SELECT * FROM waiting_line ORDER BY joined_at, session_id")
        return [{**dict(r), "keys": tuple(r["keys"].split())} for r in rows]

    def save(self, places: list[dict[str, Any]]) -> None:
        """The line as the ask left it (inside `locked`): places with the columns `load` gives."""
        self.store._write("DELETE FROM waiting_line")
        for p in places:
            self.store._write(
                "INSERT INTO waiting_line (session_id, keys, joined_at, asked_at, retry_s, asks) VALUES (?, ?, ?, ?, ?, ?)",
                (p["session_id"], " ".join(p["keys"]), p["joined_at"], p["asked_at"], p["retry_s"], p["asks"]),
            )

    def leave(self, session_id: str) -> None:
        self.store._write("DELETE FROM waiting_line WHERE session_id = ?", (session_id,))

    def elsewhere(self, now: float) -> list[Elsewhere]:
        """The other live instances that can be reached, with their free places less those held there."""
        rows = self.store._all(
            """SELECT i.id, i.url, i.room, i.live + (SELECT COUNT(*) FROM line_places p WHERE p.instance = i.id AND p.placed_at >= ?) AS busy
               FROM instances i WHERE i.id != ? AND i.url IS NOT NULL AND i.heartbeat_at >= ?""",
            (now - HELD_PLACE_S, self.instance_id, now - MISSED_BEATS * self.shared.heartbeat_s),
        )
        return [Elsewhere(r["id"], r["url"], r["room"], r["busy"]) for r in rows]

    def held_here(self, now: float) -> int:
        """Places of this instance held for customers admitted from another instance, not yet started."""
        row = self.store._one(
            "SELECT COUNT(*) AS n FROM line_places WHERE instance = ? AND placed_at >= ?", (self.instance_id, now - HELD_PLACE_S)
        )
        return int(row["n"]) if row else 0

    def hold(self, session_id: str, instance: str, now: float) -> None:
        """A place on `instance` for this customer (inside `locked`)."""
        self.store._write(
            """INSERT INTO line_places (session_id, instance, placed_at) VALUES (?, ?, ?)
               ON CONFLICT (session_id) DO UPDATE SET instance = excluded.instance, placed_at = excluded.placed_at""",
            (session_id, instance, now),
        )

    def take_held(self, session_id: str, now: float) -> bool:
        """The place held here for this customer, taken (False: none, or it lapsed). Its check counts as
        live here from then on, in the same transaction: no other ask sees the place free meanwhile."""
        with self.locked():
            row = self.store._one(
                "DELETE FROM line_places WHERE session_id = ? AND instance = ? RETURNING placed_at", (session_id, self.instance_id)
            )
            taken = row is not None and row["placed_at"] >= now - HELD_PLACE_S
            if taken:
                self.store._write("UPDATE instances SET live = live + 1 WHERE id = ?", (self.instance_id,))
        return taken

    def release_held(self, session_id: str) -> None:
        self.store._write("DELETE FROM line_places WHERE session_id = ?", (session_id,))

    def publish(self, room: int, live: int, now: float) -> None:
        """This instance's room and live checks, for the others' asks."""
        self.store._write(
            "UPDATE instances SET url = ?, room = ?, live = ?, capacity_at = ? WHERE id = ?", (self.url, room, live, now, self.instance_id)
        )

    def forget_lapsed(self, now: float) -> None:
        self.store._write("DELETE FROM line_places WHERE placed_at < ?", (now - HELD_PLACE_S,))
