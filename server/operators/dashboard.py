"""How checks are going, from the audit log and the sessions: the funnel by day (sessions by the day they
were created), drop-off per step, failure reasons, median time to complete, webhook delivery health. Pure:
the rows come from OperatorStore."""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..reasons import Reason

# Funnel steps and the audit actions that mark a session as having reached them.
STEPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("created", frozenset({"session.created"})),
    ("link_opened", frozenset({"link.opened"})),
    ("consented", frozenset({"status.consented"})),
    ("id_uploaded", frozenset({"status.id_uploaded"})),
    ("live_started", frozenset({"status.live"})),
    # Every end of a check the customer saw through: a failed one too (its live attempts all failed), not a
    # drop-off. A redaction also moves a session to `failed`; `build` leaves that out.
    ("finished", frozenset({"status.approved", "status.rejected", "status.review", "status.failed"})),
    ("approved", frozenset({"status.approved"})),
)
STEP_NAMES = tuple(name for name, _ in STEPS)
DECIDED = ("approved", "rejected", "review")


@dataclass(frozen=True)
class DayFunnel:
    day: str  # YYYY-MM-DD, UTC
    counts: dict[str, int]


@dataclass
class Dashboard:
    days: list[DayFunnel]
    totals: dict[str, int]
    dropoff: dict[str, float]  # step -> share of the previous step's sessions that did not reach it
    failure_reasons: list[tuple[str, int]]
    median_complete_s: float | None
    webhooks: dict[str, Any] = field(default_factory=dict)


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def build(events: list[dict[str, Any]], outcomes: list[dict[str, Any]], webhook_events: list[dict[str, Any]]) -> Dashboard:
    reached: dict[str, set[str]] = {}
    created_day: dict[str, str] = {}
    redacted = {row["id"] for row in outcomes if row["failure_reason"] == Reason.REDACTED.value}
    for row in events:
        created_day[row["session_id"]] = day_of(row["created_at"])
        if row["action"] == "status.failed" and row["session_id"] in redacted:
            continue  # erased by the merchant before it ended: not finished
        for name, actions in STEPS:
            if row["action"] in actions:
                reached.setdefault(name, set()).add(row["session_id"])
    # A session that reached a step reached every step before it (e.g. the merchant sent the ID photo, or
    # consent moved it straight on): the funnel counts it there too.
    for index in range(len(STEPS) - 2, -1, -1):
        name, later = STEPS[index][0], STEPS[index + 1][0]
        if later != "approved":
            reached.setdefault(name, set()).update(reached.get(later, set()))
    days = sorted(set(created_day.values()))
    by_day = [DayFunnel(day, {name: sum(1 for s in reached.get(name, ()) if created_day.get(s) == day) for name in STEP_NAMES}) for day in days]
    totals = {name: len(reached.get(name, ())) for name in STEP_NAMES}
    dropoff = {}
    for (previous, _), (name, _) in zip(STEPS, STEPS[1:], strict=False):
        dropoff[name] = round(1 - totals[name] / totals[previous], 4) if totals[previous] else 0.0
    reasons = Counter(row["failure_reason"] for row in outcomes if row["failure_reason"])
    durations = [row["finished_at"] - row["created_at"] for row in outcomes if row["status"] in DECIDED and row["finished_at"]]
    return Dashboard(
        days=by_day,
        totals=totals,
        dropoff=dropoff,
        failure_reasons=reasons.most_common(),
        median_complete_s=round(statistics.median(durations), 1) if durations else None,
        webhooks=webhook_health(webhook_events),
    )


def webhook_health(events: list[dict[str, Any]]) -> dict[str, Any]:
    delivered = [e for e in events if e["delivered_at"]]
    return {
        "events": len(events),
        "delivered": len(delivered),
        "pending": sum(1 for e in events if not e["delivered_at"] and not e["gave_up_at"]),
        "given_up": sum(1 for e in events if e["gave_up_at"]),
        "first_try": sum(1 for e in delivered if e["attempts"] == 1),
        "median_delivery_s": round(statistics.median(e["delivered_at"] - e["created_at"] for e in delivered), 2) if delivered else None,
    }


def to_csv(dashboard: Dashboard) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["day", *STEP_NAMES])
    for day in dashboard.days:
        writer.writerow([day.day, *(day.counts[name] for name in STEP_NAMES)])
    writer.writerow(["total", *(dashboard.totals[name] for name in STEP_NAMES)])
    return out.getvalue()
