"""The face gallery's rows and its two engines, behind one interface.

SQLite (the embedded default): each row keeps its rotated template as float32 bytes, and the search is
exact, with NumPy, over every template of the partition held in memory (loaded at start, kept current by
every write here). PostgreSQL: the template is a pgvector `vector(512)` column under an HNSW index
(cosine distance); the search asks the index for the nearest entries of the merchant's partition
(iterative scans, so a filter on the merchant still fills the result).

Templates reach this module already rotated (server/gallery/rotation.py); what an operator wrote when
blocking a face is sealed with the evidence key. Removals take the row and the index entry at once.
"""

from __future__ import annotations

import contextlib
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..gallery.exact import ExactIndex
from .store import Store, _inserted_id

DIMENSIONS = 512
ENROLLED, BLOCKED = "enrolled", "blocked"
GRAPH_BYTES_PER_FACE = 2830  # pgvector's HNSW graph in memory while building, per 512-d template (measured)
EF_SEARCH = 400  # HNSW candidates per search (pgvector's default is 40): recall@1 0.995 at 10^6 faces, 0.88 at 100 (docs/benchmarks.md)
ENTRY_COLUMNS = "g.id, g.merchant_id, g.sandbox, g.session_id, g.kind, g.document_hash, g.reference_hash, g.created_by, g.created_at"
NEAREST_SQL = f"""SELECT {ENTRY_COLUMNS}, 1 - (g.embedding <=> ?::vector) AS score FROM gallery g
    WHERE g.merchant_id = ? AND g.sandbox = ? ORDER BY g.embedding <=> ?::vector LIMIT ?"""


@dataclass(frozen=True)
class GalleryEntry:
    id: int
    merchant_id: int
    sandbox: bool
    session_id: str | None
    kind: str  # ENROLLED or BLOCKED
    document_hash: str | None
    reference_hash: str | None
    created_by: str | None
    created_at: float


@dataclass(frozen=True)
class Hit:
    entry: GalleryEntry
    score: float  # cosine similarity to the query


class GalleryStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = "postgresql" if store.shared else "sqlite"
        self.ef_search = EF_SEARCH
        self.index: ExactIndex | None = None
        if self.engine == "sqlite":
            self.index = ExactIndex(DIMENSIONS)
            for row in self.store._all("SELECT id, merchant_id, sandbox, template FROM gallery WHERE template IS NOT NULL"):
                self.index.add((row["merchant_id"], bool(row["sandbox"])), row["id"], _from_bytes(row["template"]))

    # -- the key ----------------------------------------------------------------------------------

    def key_digest(self) -> str | None:
        row = self.store._one("SELECT digest FROM gallery_key_check WHERE id = 1")
        return row["digest"] if row else None

    def set_key_digest(self, digest: str) -> None:
        self.store._write(
            "INSERT INTO gallery_key_check (id, digest) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET digest = excluded.digest", (digest,)
        )

    # -- writing ----------------------------------------------------------------------------------

    def add(
        self,
        merchant_id: int,
        sandbox: bool,
        template: np.ndarray,
        kind: str = ENROLLED,
        session_id: str | None = None,
        document_hash: str | None = None,
        reference_hash: str | None = None,
        reason: str | None = None,
        created_by: str | None = None,
        now: float | None = None,
    ) -> int:
        template = np.asarray(template, dtype=np.float32)
        sealed = self.store.cipher.seal_text(reason, f"gallery_reason:{session_id}")
        columns = "merchant_id, sandbox, session_id, kind, document_hash, reference_hash, reason, created_by, created_at"
        values = [merchant_id, int(sandbox), session_id, kind, document_hash, reference_hash, sealed, created_by, time.time() if now is None else now]
        if self.engine == "sqlite":
            cursor = self.store._write(f"INSERT INTO gallery ({columns}, template) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id", [*values, template.tobytes()])
            entry_id = _inserted_id(cursor)
            self.index.add((merchant_id, sandbox), entry_id, template)  # type: ignore[union-attr]
            return entry_id
        cursor = self.store._write(f"INSERT INTO gallery ({columns}, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?::vector) RETURNING id", [*values, _vector(template)])
        return _inserted_id(cursor)

    def add_many(self, merchant_id: int, sandbox: bool, templates: np.ndarray, batch: int = 1000) -> list[int]:
        """Bulk enrolment without sessions (the benchmark's synthetic galleries); the new entries' ids."""
        ids = []
        for start in range(0, len(templates), batch):
            with self.store.transaction():
                ids += [self.add(merchant_id, sandbox, template, kind=ENROLLED, created_by="synthetic") for template in templates[start : start + batch]]
        return ids

    def bulk_load(self, merchant_id: int, sandbox: bool, templates: np.ndarray) -> float:
        """Synthetic entries in bulk (benchmarks); the seconds the HNSW index took to build again after
        them on PostgreSQL (dropped for the load: building once is far cheaper than growing it), 0 on SQLite."""
        if self.engine == "sqlite":
            self.add_many(merchant_id, sandbox, templates)
            return 0.0
        self.store._write("DROP INDEX IF EXISTS gallery_embedding")
        with self.store._lock, self.store._db._db.cursor() as cursor:  # type: ignore[attr-defined]
            with cursor.copy("COPY gallery (merchant_id, sandbox, kind, created_by, created_at, embedding) FROM STDIN WITH (FORMAT binary)") as copy:
                copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
                head = struct.pack(">hiqiqi", 6, 8, merchant_id, 8, int(sandbox), len(ENROLLED)) + ENROLLED.encode()
                head += struct.pack(">i", 9) + b"synthetic" + struct.pack(">id", 8, time.time())
                vector_head = struct.pack(">ihh", 4 + 4 * DIMENSIONS, DIMENSIONS, 0)  # pgvector's binary form
                big_endian = np.asarray(templates, dtype=">f4")
                for start in range(0, len(big_endian), 10_000):
                    copy.write(b"".join(head + vector_head + row.tobytes() for row in big_endian[start : start + 10_000]))
                copy.write(struct.pack(">h", -1))
        started = time.perf_counter()
        self.rebuild_index()
        return time.perf_counter() - started

    def rebuild_index(self) -> None:
        """PostgreSQL: the HNSW index built again over every template, with the memory its graph needs."""
        self.store._db.build_vector_index("gallery", "embedding", index_build_mb(self.count()))

    def remove_session(self, session_id: str) -> int:
        """Every entry made from the session (enrolment and blocklist), row and index entry at once."""
        ids = [r["id"] for r in self.store._all("SELECT id FROM gallery WHERE session_id = ?", (session_id,))]
        return self._remove(ids)

    def remove_enrolled(self, merchant_id: int) -> int:
        """A merchant that turned its gallery off keeps its blocklist only."""
        ids = [r["id"] for r in self.store._all("SELECT id FROM gallery WHERE merchant_id = ? AND kind = ?", (merchant_id, ENROLLED))]
        return self._remove(ids)

    def purge(self, created_before: float, finished_before: float) -> int:
        """Entries past the gallery's retention, and those of sessions whose results are being deleted."""
        rows = self.store._all(
            """SELECT g.id FROM gallery g LEFT JOIN sessions s ON s.id = g.session_id
               WHERE g.created_at < ? OR (s.finished_at IS NOT NULL AND s.finished_at < ?)""",
            (created_before, finished_before),
        )
        return self._remove([r["id"] for r in rows])

    def _remove(self, ids: list[int]) -> int:
        if not ids:
            return 0
        with self.store.transaction():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                self.store._write(f"DELETE FROM gallery WHERE id IN ({', '.join('?' for _ in chunk)})", chunk)
        if self.index is not None:
            for entry_id in ids:
                self.index.remove(entry_id)
        self.store._forget()
        return len(ids)

    def transform_all(self, matrix: np.ndarray, digest: str) -> int:
        """Every template multiplied by `matrix` (re-keying: the new rotation times the old one's inverse),
        and the new key's digest, in one transaction."""
        count = 0
        with self.store.transaction():
            self.set_key_digest(digest)
            if self.engine == "postgresql":  # each update would grow the graph (tens of ms a face): build it once after
                self.store._write("DROP INDEX IF EXISTS gallery_embedding")
            for entry_id, template in list(self._templates()):
                new = (matrix @ template.astype(np.float64)).astype(np.float32)
                if self.engine == "sqlite":
                    self.store._write("UPDATE gallery SET template = ? WHERE id = ?", (new.tobytes(), entry_id))
                else:
                    self.store._write("UPDATE gallery SET embedding = ?::vector WHERE id = ?", (_vector(new), entry_id))
                count += 1
            if self.engine == "postgresql":
                self.rebuild_index()
        if self.index is not None:
            for row in self.store._all("SELECT id, merchant_id, sandbox, template FROM gallery"):
                self.index.add((row["merchant_id"], bool(row["sandbox"])), row["id"], _from_bytes(row["template"]))
        self.store._forget()
        return count

    def _templates(self) -> Iterator[tuple[int, np.ndarray]]:
        if self.engine == "sqlite":
            for row in self.store._all("SELECT id, template FROM gallery"):
                yield row["id"], _from_bytes(row["template"])
        else:
            for row in self.store._all("SELECT id, embedding::real[] AS embedding FROM gallery"):
                yield row["id"], np.asarray(row["embedding"], dtype=np.float32)

    # -- reading ----------------------------------------------------------------------------------

    def nearest(self, merchant_id: int, sandbox: bool, query: np.ndarray, k: int = 10) -> list[Hit]:
        """The merchant's `k` entries most similar to the (rotated) query, best first."""
        query = np.asarray(query, dtype=np.float32)
        if self.index is None:
            vector = _vector(query)
            with self.searching(k):
                rows = self.store._all(NEAREST_SQL, (vector, merchant_id, int(sandbox), vector, k))
            return sorted((Hit(_entry(row), float(row["score"])) for row in rows), key=lambda hit: -hit.score)
        found = self.index.search((merchant_id, sandbox), query, k)
        entries = self._entries(entry_id for entry_id, _ in found)
        return [Hit(entries[entry_id], score) for entry_id, score in found if entry_id in entries]

    @contextlib.contextmanager
    def searching(self, k: int = 10) -> Iterator[None]:
        """PostgreSQL: one transaction whose settings hold for the search in it only: `ef_search`
        candidates, iterative scans, and no sort. pgvector's cost estimate grows with ef_search, while its
        512-d vectors, stored out of line, make reading every row look cheap: at ef_search 400 over 10^5
        faces the planner read and sorted them all (0.6 s a search) instead of walking the HNSW graph
        (20 to 40 ms). With sorting off, only the index gives the rows in order."""
        settings = "SELECT set_config('hnsw.ef_search', ?, true) AS a, set_config('hnsw.iterative_scan', 'relaxed_order', true) AS b, set_config('enable_sort', 'off', true) AS c"
        with self.store._lock:
            inside = self.store._db.in_transaction  # a caller's transaction: the settings end with it
            with contextlib.nullcontext() if inside else self.store.transaction():
                self.store._one(settings, (str(max(self.ef_search, k)),))
                yield

    def with_document(self, merchant_id: int, sandbox: bool, document_hash: str, query: np.ndarray) -> list[Hit]:
        """The merchant's entries under this document number, each with its similarity to the query."""
        rows = self.store._all(
            f"SELECT {ENTRY_COLUMNS} FROM gallery g WHERE g.merchant_id = ? AND g.sandbox = ? AND g.document_hash = ? ORDER BY g.id",
            (merchant_id, int(sandbox), document_hash),
        )
        if not rows:
            return []
        query = np.asarray(query, dtype=np.float32)
        if self.index is not None:
            scores = {row["id"]: float(self.index.template(row["id"]) @ query) for row in rows if self.index.template(row["id"]) is not None}
        else:
            ids = [row["id"] for row in rows]
            found = self.store._all(
                f"SELECT id, 1 - (embedding <=> ?::vector) AS score FROM gallery WHERE id IN ({', '.join('?' for _ in ids)})", (_vector(query), *ids)
            )
            scores = {row["id"]: float(row["score"]) for row in found}
        return [Hit(_entry(row), scores[row["id"]]) for row in rows if row["id"] in scores]

    def approved_with_document(self, merchant_id: int, sandbox: bool, document_hash: str, other_than: str) -> list[str]:
        """Approved sessions of the merchant whose document has this number (the per-document cap)."""
        rows = self.store._all(
            "SELECT id FROM sessions WHERE merchant_id = ? AND sandbox = ? AND document_hash = ? AND status = 'approved' AND id != ? ORDER BY created_at",
            (merchant_id, int(sandbox), document_hash, other_than),
        )
        return [row["id"] for row in rows]

    def entries_of(self, session_id: str) -> list[GalleryEntry]:
        return [_entry(row) for row in self.store._all(f"SELECT {ENTRY_COLUMNS} FROM gallery g WHERE g.session_id = ? ORDER BY g.id", (session_id,))]

    def reason(self, entry: GalleryEntry) -> str | None:
        row = self.store._one("SELECT reason FROM gallery WHERE id = ?", (entry.id,))
        return self.store.cipher.open_text(row["reason"], f"gallery_reason:{entry.session_id}") if row else None

    def count(self, merchant_id: int | None = None) -> int:
        if merchant_id is None:
            row = self.store._one("SELECT COUNT(*) AS n FROM gallery")
        else:
            row = self.store._one("SELECT COUNT(*) AS n FROM gallery WHERE merchant_id = ?", (merchant_id,))
        return int(row["n"]) if row else 0

    def _entries(self, ids: Iterable[int]) -> dict[int, GalleryEntry]:
        wanted = list(ids)
        if not wanted:
            return {}
        rows = self.store._all(f"SELECT {ENTRY_COLUMNS} FROM gallery g WHERE g.id IN ({', '.join('?' for _ in wanted)})", wanted)
        return {row["id"]: _entry(row) for row in rows}

    # -- the merchant's settings ------------------------------------------------------------------

    def configure(self, merchant_id: int, enabled: bool, action: str, document_cap: int) -> int:
        """The merchant's gallery settings; turning it off removes its enrolled faces (returns how many)."""
        self.store._write(
            "UPDATE merchants SET gallery = ?, gallery_action = ?, document_cap = ? WHERE id = ?", (int(enabled), action, document_cap, merchant_id)
        )
        return 0 if enabled else self.remove_enrolled(merchant_id)


def index_build_mb(templates: int) -> int:
    """maintenance_work_mem (MB) under which the HNSW graph of this many templates is built in memory
    (a quarter more than it takes); 64 MB, PostgreSQL's default, at least."""
    return max(64, -(-templates * GRAPH_BYTES_PER_FACE * 5 // 4 // 2**20))


def _entry(row: dict) -> GalleryEntry:
    return GalleryEntry(
        row["id"], row["merchant_id"], bool(row["sandbox"]), row["session_id"], row["kind"], row["document_hash"], row["reference_hash"],
        row["created_by"], row["created_at"],
    )


def _from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.float32)


_VECTOR_TEXT = "[" + ",".join(["%.8g"] * DIMENSIONS) + "]"


def _vector(template: np.ndarray) -> str:
    """pgvector's text form (one formatting operation: a tenth of the time of one per value)."""
    return _VECTOR_TEXT % tuple(template.tolist())


def session_keys(store: Store, session_id: str) -> tuple[int, str | None, str | None] | None:
    """(merchant id, document hash, reference hash) of a session, as the store keeps them."""
    row = store._one("SELECT merchant_id, document_hash, reference_hash FROM sessions WHERE id = ?", (session_id,))
    return (row["merchant_id"], row["document_hash"], row["reference_hash"]) if row else None
