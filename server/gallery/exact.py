"""Exact cosine search over templates held in memory: the SQLite engine's index. Pure; no I/O.

One matrix per partition (a merchant's live or sandbox gallery), grown by doubling; a removed row is
replaced by the partition's last, so the matrix stays dense and a search is one matrix-vector product.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Partition = tuple[int, bool]  # (merchant id, sandbox)


@dataclass
class _Rows:
    matrix: np.ndarray
    ids: list[int] = field(default_factory=list)
    where: dict[int, int] = field(default_factory=dict)  # entry id -> row


class ExactIndex:
    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self._partitions: dict[Partition, _Rows] = {}
        self._partition_of: dict[int, Partition] = {}

    def __len__(self) -> int:
        return len(self._partition_of)

    def add(self, partition: Partition, entry_id: int, template: np.ndarray) -> None:
        rows = self._partitions.get(partition)
        if rows is None:
            rows = self._partitions[partition] = _Rows(np.empty((16, self.dimensions), dtype=np.float32))
        if entry_id in rows.where:
            rows.matrix[rows.where[entry_id]] = template
            return
        if len(rows.ids) == len(rows.matrix):
            rows.matrix = np.concatenate([rows.matrix, np.empty_like(rows.matrix)])
        rows.matrix[len(rows.ids)] = template
        rows.where[entry_id] = len(rows.ids)
        rows.ids.append(entry_id)
        self._partition_of[entry_id] = partition

    def remove(self, entry_id: int) -> None:
        partition = self._partition_of.pop(entry_id, None)
        if partition is None:
            return
        rows = self._partitions[partition]
        row, last = rows.where.pop(entry_id), len(rows.ids) - 1
        if row != last:
            moved = rows.ids[last]
            rows.matrix[row] = rows.matrix[last]
            rows.ids[row] = moved
            rows.where[moved] = row
        rows.ids.pop()

    def search(self, partition: Partition, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The `k` most similar entries, best first, as (id, cosine); templates are unit length."""
        rows = self._partitions.get(partition)
        if rows is None or not rows.ids:
            return []
        # einsum, not `@`: a matrix-vector product in BLAS wakes its thread pool, which on a busy machine
        # costs far more than the product itself (42 ms against 0.2 ms for 2,000 templates, measured).
        scores = np.einsum("ij,j->i", rows.matrix[: len(rows.ids)], np.asarray(query, dtype=np.float32))
        k = min(k, len(scores))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best])]
        return [(rows.ids[i], float(scores[i])) for i in best]

    def template(self, entry_id: int) -> np.ndarray | None:
        partition = self._partition_of.get(entry_id)
        if partition is None:
            return None
        rows = self._partitions[partition]
        return rows.matrix[rows.where[entry_id]]

    def memory_bytes(self) -> int:
        return sum(rows.matrix.nbytes for rows in self._partitions.values())
