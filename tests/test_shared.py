"""What instances agree on through the database, on SQLite and on PostgreSQL: heartbeats and the owners of
live checks, webhook leases, token buckets, the secrets every instance must share."""

from __future__ import annotations

import os
import time

import pytest

from server.config import ConfigError
from server.sessions import Status
from server.storage.crypto import Cipher
from server.storage.shared import MISSED_BEATS, SharedState
from server.storage.store import Store
from tests.support.postgres import BACKENDS, database_for
from tests.test_store import new_session


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    store = Store(database_for(request) or tmp_path / "db.sqlite3", Cipher(os.urandom(32)))
    yield store
    store.close()


def test_checks_of_a_stopped_instance_are_orphaned_and_a_running_ones_are_not(store):
    a, b = SharedState(store, "a", heartbeat_s=1), SharedState(store, "b", heartbeat_s=1)
    now = time.time()
    a.heartbeat(now)
    b.heartbeat(now)
    for session_id, owner in (("ses_a", "a"), ("ses_b", "b"), ("ses_legacy", None)):
        new_session(store, session_id, status=Status.ID_UPLOADED)
        store.move_session(session_id, Status.ID_UPLOADED, Status.LIVE, owner=owner)
    assert b.owner_of("ses_b") == "b" and b.alive_instances(now) == {"a", "b"}
    assert a.orphaned_checks(include_own=True, now=now) == {"ses_a", "ses_legacy"}  # a's start-up: its own from before
    assert a.orphaned_checks(include_own=False, now=now) == {"ses_legacy"}
    later = now + MISSED_BEATS + 1  # b stopped beating
    a.heartbeat(later)
    assert a.orphaned_checks(include_own=False, now=later) == {"ses_b", "ses_legacy"}


def test_a_webhook_is_claimed_by_one_instance_until_its_lease_ends(store):
    new_session(store)
    store.add_webhook_event("evt_1", "ses_1", 1, "session.approved", "https://shop.example/hook", "{}")
    a, b = SharedState(store, "a"), SharedState(store, "b")
    now = time.time()
    assert a.claim_webhook_events(["evt_1"], lease_s=30, now=now) == {"evt_1"}
    assert b.claim_webhook_events(["evt_1"], lease_s=30, now=now + 1) == set()
    assert store.due_webhook_events(now + 1) == [] and store.next_webhook_due() == pytest.approx(now + 30)
    # a died holding it: the lease ends, b takes it.
    assert [e["id"] for e in store.due_webhook_events(now + 31)] == ["evt_1"]
    assert b.claim_webhook_events(["evt_1"], lease_s=30, now=now + 31) == {"evt_1"}
    store.record_webhook_attempt("evt_1", 200, None, 5.0, delivered=True, next_attempt_at=None)
    assert a.claim_webhook_events(["evt_1"], lease_s=30, now=now + 100) == set()  # delivered: nobody's


def test_a_restarted_instance_frees_its_own_claims(store):
    new_session(store)
    store.add_webhook_event("evt_1", "ses_1", 1, "session.approved", "https://shop.example/hook", "{}")
    a = SharedState(store, "a")
    a.claim_webhook_events(["evt_1"], lease_s=30)
    assert SharedState(store, "b").release_own_claims() == 0
    assert a.release_own_claims() == 1 and [e["id"] for e in store.due_webhook_events(time.time())] == ["evt_1"]


def test_a_token_bucket_is_one_statement_shared_by_instances(store):
    a, b = SharedState(store, "a"), SharedState(store, "b")
    now = 1000.0
    assert a.take_token("api:key:1", per_minute=60, burst=2, now=now) == 0.0
    assert b.take_token("api:key:1", per_minute=60, burst=2, now=now) == 0.0
    assert a.take_token("api:key:1", per_minute=60, burst=2, now=now) == pytest.approx(1.0)
    assert b.take_token("api:key:2", per_minute=60, burst=2, now=now) == 0.0  # another key, its own bucket
    assert b.take_token("api:key:1", per_minute=60, burst=2, now=now + 0.5) == pytest.approx(0.5)  # refused: not counted
    assert a.take_token("api:key:1", per_minute=60, burst=2, now=now + 1.0) == 0.0  # refilled at 1 a second
    assert a.forget_full_buckets(now=now + 1.5) == 1  # key:2's, full again; key:1's is not
    assert a.forget_full_buckets(now=now + 10) == 1
    assert b.take_token("api:key:1", per_minute=60, burst=2, now=now + 10) == 0.0


def test_bucket_keys_are_not_stored_in_clear(store):
    SharedState(store, "a").take_token("page:203.0.113.9", per_minute=60, burst=2)
    [row] = store._all("SELECT key FROM rate_buckets")
    assert "203.0.113.9" not in row["key"]


def test_every_instance_must_have_the_same_secret(store):
    a, b = SharedState(store, "a"), SharedState(store, "b")
    a.check_same_secret("cookie_secret", b"s" * 32, "set it")
    b.check_same_secret("cookie_secret", b"s" * 32, "set it")
    with pytest.raises(ConfigError, match="differs"):
        b.check_same_secret("cookie_secret", b"t" * 32, "set it")


def test_failures_pause_a_customer_on_every_instance(store):
    a, b = SharedState(store, "a"), SharedState(store, "b")
    for t, instance in ((0, a), (10, b), (20, a)):
        assert instance.paused_for("customer", now=1000 + t) == 0
        instance.record_failure("customer", limit=3, window_s=180, pause_s=1800, now=1000 + t)
    assert b.paused_for("customer", now=1021) > 1700 and a.paused_for("customer", now=1021) > 1700
    assert a.paused_for("customer", now=2821) == 0 and b.paused_for("someone else", now=1021) == 0
    [row] = store._all("SELECT key FROM failure_counts")
    assert "customer" not in row["key"]


def test_failures_outside_the_window_do_not_add_up(store):
    a = SharedState(store, "a")
    for t in (0, 200, 400):
        a.record_failure("customer", limit=3, window_s=180, pause_s=1800, now=1000 + t)
    assert a.paused_for("customer", now=1401) == 0
    assert a.forget_full_buckets(now=1400 + 180 + 1800 + 1) == 1


def test_two_processes_under_one_instance_id_are_reported(store, caplog):
    first, second = SharedState(store, "a"), SharedState(store, "a")
    assert first.heartbeat(now=1000) and second.heartbeat(now=1001)  # a restart looks like this: fine
    assert not first.heartbeat(now=1002)  # but the first is still beating
    assert "another process runs as instance 'a'" in caplog.text
    restarted = SharedState(store, "b")
    assert restarted.heartbeat(now=1003) and restarted.heartbeat(now=1004)


def test_a_step_of_one_machines_wall_clock_moves_nothing_the_instances_compare(postgres, monkeypatch):
    """Heartbeats, owners and leases are on the cluster's clock (the database's, advanced by the monotonic
    clock): a wall clock stepped by hours (a bad NTP step, a resumed VM) neither makes the others look gone
    to this instance nor this one look gone to them."""
    store = Store(postgres.new_database(), Cipher(os.urandom(32)))
    a, b = SharedState(store, "a", heartbeat_s=1), SharedState(store, "b", heartbeat_s=1)
    new_session(store, "ses_b", status=Status.ID_UPLOADED)
    store.move_session("ses_b", Status.ID_UPLOADED, Status.LIVE, owner="b")
    b.heartbeat()
    wall = time.time
    for step_s in (7200.0, -7200.0):
        monkeypatch.setattr(time, "time", lambda step_s=step_s: wall() + step_s)
        a.heartbeat()
        assert a.alive_instances() == b.alive_instances() == {"a", "b"}
        assert a.orphaned_checks(include_own=False) == set()  # b's check is not taken from it
        assert abs(a.now() - wall()) < 60
    store.close()
