"""Review decisions on the real store and Lifecycle: only a session in review, a reason required, the
decision recorded on the session and in the audit log, four-eyes votes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from server.operators.review import Verdict, decide
from server.sessions import Status
from tests.support.console import bring_to_review, make_operator
from tests.support.postgres import BACKENDS, database_for


@pytest.fixture(params=BACKENDS)
def database_url(request):
    """Every test here runs on SQLite and on PostgreSQL."""
    return database_for(request)


FACE = cv2.imencode(".jpg", np.zeros((112, 112, 3), np.uint8))[1].tobytes()


def review_session(services):
    [key] = services.store.api_keys()  # the sandbox_key fixture's, of the merchant "Test Shop"
    session, _ = services.lifecycle.create(key.id, True, "order-1", "http://127.0.0.1")
    return bring_to_review(services, session.id, FACE)


def test_a_decision_needs_a_known_choice_and_a_reason(services, sandbox_key):
    session = review_session(services)
    alice = make_operator(services, "Test Shop", "alice")
    for choice, reason in (("approved", "   "), ("maybe", "looks fine"), ("", "")):
        assert decide(services.lifecycle, services.operators, alice, session, choice, reason, False).verdict == Verdict.BAD_INPUT
    assert services.store.session(session.id).status == Status.REVIEW


def test_approving_records_who_and_why_and_keeps_the_customers_finishing_time(services, sandbox_key):
    session = review_session(services)
    alice = make_operator(services, "Test Shop", "alice")
    outcome = decide(services.lifecycle, services.operators, alice, session, "approved", "  same   person ", False)
    assert outcome.verdict == Verdict.SETTLED and outcome.session.status == Status.APPROVED
    assert outcome.session.review["reason"] == "same person" and outcome.session.review["decided_by"] == ["alice"]
    assert outcome.session.finished_at == session.finished_at and outcome.session.failure_reason is None
    # Deciding again (a stale page) changes nothing.
    again = decide(services.lifecycle, services.operators, alice, session, "rejected", "no", False)
    assert again.verdict == Verdict.NOT_IN_REVIEW and services.store.session(session.id).status == Status.APPROVED


def test_four_eyes_disagreement_waits_for_a_third_operator(services, sandbox_key):
    session = review_session(services)
    alice, bob, carol = (make_operator(services, "Test Shop", name) for name in ("alice", "bob", "carol"))
    assert decide(services.lifecycle, services.operators, alice, session, "approved", "fine", True).verdict == Verdict.WAITING
    assert decide(services.lifecycle, services.operators, bob, session, "rejected", "not sure", True).verdict == Verdict.WAITING
    assert decide(services.lifecycle, services.operators, bob, session, "approved", "ok then", True).verdict == Verdict.ALREADY_VOTED
    outcome = decide(services.lifecycle, services.operators, carol, session, "rejected", "agree with bob", True)
    assert outcome.verdict == Verdict.SETTLED and outcome.session.status == Status.REJECTED
    assert outcome.session.review["decided_by"] == ["bob", "carol"] and outcome.session.failure_reason == "rejected_in_review"
    assert [v.operator for v in services.operators.votes(session.id)] == ["alice", "bob", "carol"]
