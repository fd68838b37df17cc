"""How long a live check's decision took, and where the time went (`live_stats.decision_ms`, `decision_parts_ms`).

Measured from the arrival of the frame that completed the check (monotonic clock), so a reader can tell
that frame's own analysis from the PAD verdict, the face embeddings and the match that follow it.
"""

from __future__ import annotations

import time


class DecisionParts(dict):
    """Where a decision's time went (ms), for `live_stats.decision_parts_ms`: the completing frame's own
    analysis, the hand-over to the outcome, the PAD verdict, the remaining face embeddings, the rest."""

    def mark(self, part: str, start: float, end: float) -> None:
        self[part] = round((end - start) * 1000, 1)


def decided(stats: dict, started: float | None, parts: DecisionParts | None = None) -> None:
    """Records decision_ms: from `started` (monotonic, when the frame that completed the check arrived) to
    now, and its parts when the outcome marked them."""
    if started is not None:
        stats["decision_ms"] = round((time.monotonic() - started) * 1000, 1)
        if parts:
            stats["decision_parts_ms"] = {**parts, "decide": round(stats["decision_ms"] - sum(parts.values()), 1)}
