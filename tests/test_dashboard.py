"""The dashboard's figures from audit rows and sessions: the funnel by creation day, drop-off, reasons,
median time to complete, webhook health, CSV."""

from __future__ import annotations

from server.operators.dashboard import build, day_of, to_csv

DAY1, DAY2 = 1_700_000_000.0, 1_700_000_000.0 + 86400


def events(session: str, created: float, *actions: str) -> list[dict]:
    return [{"session_id": session, "action": a, "created_at": created} for a in ("session.created", *actions)]


def test_the_funnel_counts_sessions_per_step_by_creation_day():
    rows = [
        *events("a", DAY1, "link.opened", "status.consented", "status.id_uploaded", "status.live", "status.processing", "status.approved"),
        *events("b", DAY1, "link.opened", "status.consented"),
        *events("c", DAY2),
        # The merchant sent the ID photo and consent moved straight on: the step before is reached too.
        *events("d", DAY2, "link.opened", "status.id_uploaded", "status.live", "status.processing", "status.review"),
    ]
    outcomes = [
        {"id": "a", "status": "approved", "failure_reason": None, "created_at": DAY1, "finished_at": DAY1 + 60},
        {"id": "b", "status": "failed", "failure_reason": "timeout", "created_at": DAY1, "finished_at": DAY1 + 30},
        {"id": "c", "status": "created", "failure_reason": None, "created_at": DAY2, "finished_at": None},
        {"id": "d", "status": "review", "failure_reason": None, "created_at": DAY2, "finished_at": DAY2 + 100},
    ]
    hooks = [
        {"attempts": 1, "delivered_at": DAY1 + 61, "gave_up_at": None, "created_at": DAY1 + 60},
        {"attempts": 3, "delivered_at": None, "gave_up_at": None, "created_at": DAY2},
        {"attempts": 9, "delivered_at": None, "gave_up_at": DAY2 + 5, "created_at": DAY2},
    ]
    dashboard = build(rows, outcomes, hooks)
    assert dashboard.totals == {"created": 4, "link_opened": 3, "consented": 3, "id_uploaded": 2, "live_started": 2, "finished": 2, "approved": 1}
    assert [d.day for d in dashboard.days] == [day_of(DAY1), day_of(DAY2)]
    assert dashboard.days[0].counts["consented"] == 2 and dashboard.days[1].counts["created"] == 2
    assert dashboard.dropoff["link_opened"] == 0.25 and dashboard.dropoff["approved"] == 0.5
    assert dashboard.failure_reasons == [("timeout", 1)]
    assert dashboard.median_complete_s == 80.0  # a (60 s) and d (100 s); the failed one is not a decision
    assert dashboard.webhooks == {"events": 3, "delivered": 1, "pending": 1, "given_up": 1, "first_try": 1, "median_delivery_s": 1.0}
    lines = to_csv(dashboard).splitlines()
    assert lines[0] == "day,created,link_opened,consented,id_uploaded,live_started,finished,approved"
    assert lines[1] == f"{day_of(DAY1)},2,2,2,1,1,1,1" and lines[-1] == "total,4,3,3,2,2,2,1"


def test_a_failed_check_is_finished_not_a_drop_off_and_a_redaction_is_neither():
    live = ("link.opened", "status.consented", "status.id_uploaded", "status.live", "status.processing")
    rows = [
        *events("approved", DAY1, *live, "status.approved"),
        *events("failed", DAY1, *live, "status.id_uploaded", "status.live", "status.processing", "status.failed"),
        *events("erased", DAY1, "link.opened", "status.consented", "status.failed"),
    ]
    outcomes = [
        {"id": "approved", "status": "approved", "failure_reason": None, "created_at": DAY1, "finished_at": DAY1 + 60},
        {"id": "failed", "status": "failed", "failure_reason": "timeout", "created_at": DAY1, "finished_at": DAY1 + 90},
        {"id": "erased", "status": "failed", "failure_reason": "redacted", "created_at": DAY1, "finished_at": DAY1 + 10},
    ]
    dashboard = build(rows, outcomes, [])
    assert dashboard.totals == {"created": 3, "link_opened": 3, "consented": 3, "id_uploaded": 2, "live_started": 2, "finished": 2, "approved": 1}
    assert dashboard.dropoff["finished"] == 0.0  # every live check that started ended with a verdict
    assert dashboard.dropoff["approved"] == 0.5


def test_an_empty_period():
    dashboard = build([], [], [])
    assert dashboard.days == [] and set(dashboard.totals.values()) == {0} and dashboard.median_complete_s is None
    assert dashboard.webhooks["median_delivery_s"] is None
