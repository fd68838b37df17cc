"""A session's events as an operator reads them: a merchant polling the API, or operators reopening the
page, write one audit row per read; in a row, such reads are shown once with their count. Pure."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

REPEATED_READS = frozenset({"api.session.read", "console.session_viewed"})


@dataclass(frozen=True)
class EventRow:
    at: float
    actor: str
    action: str
    count: int = 1  # reads in a row by the same actor, shown as one
    last_at: float | None = None


def collapse_reads(events: list[dict[str, Any]]) -> list[EventRow]:
    rows: list[EventRow] = []
    for event in events:
        last = rows[-1] if rows else None
        if last is not None and event["action"] in REPEATED_READS and (last.action, last.actor) == (event["action"], event["actor"]):
            rows[-1] = dataclasses.replace(last, count=last.count + 1, last_at=event["at"])
        else:
            rows.append(EventRow(event["at"], event["actor"], event["action"]))
    return rows
