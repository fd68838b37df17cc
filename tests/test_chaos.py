"""Faults injected into a real cluster (PostgreSQL, two instances as processes, a real webhook receiver),
through realname_tools/chaos: nothing lost, nothing decided twice, every webhook delivered. Durations
are reported, never asserted."""

from __future__ import annotations

import pytest

from realname_tools.chaos import faults

pytestmark = pytest.mark.chaos  # a chaos run is a command (`pytest -m chaos`), not part of the suite


async def test_killing_the_instance_of_live_checks_loses_nothing_and_costs_no_attempt(postgres, tmp_path):
    tally = await faults.kill(postgres, tmp_path)
    assert tally.sessions_lost == 0 and tally.decided_twice == 0, tally
    assert tally.sessions_decided == tally.sessions_started == 1
    # One attempt allowed: the killed one was given back, the check was finished by instance b.
    assert set(tally.notes["statuses"].values()) == {"approved"}, tally
    assert tally.notes["never_admitted_on_b"] == 0
    assert tally.webhooks_delivered == tally.webhooks_expected == 1
    assert tally.notes["webhooks_delivered_more_than_once"] == 0
    # No check stays live for long after its owner died (the bound is generous for a busy machine).
    assert tally.notes["live_after_kill_s_max"] is not None and tally.notes["live_after_kill_s_max"] <= 10 * tally.notes["owner_timeout_s"]
    assert set(tally.customer_errors) <= {"wrong_state", "busy"}, tally.customer_errors


async def test_a_dead_webhook_receiver_for_an_hour_delays_no_other_merchant_and_loses_nothing(postgres, tmp_path):
    tally = await faults.webhooks(postgres, tmp_path, events=5)
    assert tally.notes["other_merchant_delivered_s"] is not None  # while the other receiver was dead
    assert tally.notes["simulated_s"] >= 3600 and tally.notes["refused_while_dead"] > 0
    waits = tally.notes["retry_waits_s"]
    assert waits == sorted(waits) and waits[-1] > waits[0]  # the outbox backs off
    assert tally.webhooks_delivered == tally.webhooks_expected == 10
    assert tally.notes["given_up"] == 0


async def test_postgresql_restarted_under_load_answers_503_and_stores_the_checks_that_ended_meanwhile(postgres, tmp_path):
    tally = await faults.database(postgres, tmp_path, "restart")
    notes = tally.notes
    assert tally.sessions_lost == 0 and tally.decided_twice == 0, tally
    assert set(notes["statuses"].values()) == {"approved"} and notes["results_told"] == ["approved", "approved"], tally
    assert tally.webhooks_delivered == tally.webhooks_expected == 2
    assert notes["api_500"] == 0 and notes["api_traces"] == 0 and notes["api_503_without_retry_after"] == 0, notes
    assert set(notes["api_answers_while_down"]) <= {"200", "503"}, notes  # a clear answer, not a hang


async def test_postgresql_paused_under_load_answers_503_within_the_deadline_and_loses_no_check(postgres, tmp_path):
    """A stopped server keeps its sockets open and answers nothing: without a bound on each statement the
    event loop would wait for it (pages, API and live checks frozen, a live check lost to its no-frames
    timeout)."""
    tally = await faults.database(postgres, tmp_path, "pause")
    notes = tally.notes
    assert tally.sessions_lost == 0 and tally.decided_twice == 0, tally
    assert set(notes["statuses"].values()) == {"approved"} and notes["results_told"] == ["approved", "approved"], tally
    assert tally.webhooks_delivered == tally.webhooks_expected == 2
    assert notes["api_500"] == 0 and notes["api_traces"] == 0 and notes["api_503_without_retry_after"] == 0, notes
    assert "503" in notes["api_answers_while_down"], notes  # answered while paused, not held until it went on
    assert notes["event_loop_stalled_s_max"] < notes["down_s"], notes  # the loop did not wait out the pause


async def test_a_full_disk_under_the_sqlite_default_is_told_clearly_and_corrupts_nothing(tmp_path):
    tally = await faults.disk_full(tmp_path)
    notes = tally.notes
    assert notes["integrity_check"] == "ok", notes
    assert tally.sessions_lost == 0 and tally.decided_twice == 0, tally
    assert tally.customer_errors == {"storage_full": 1}, tally  # the ID photo that could not be kept
    assert notes["page_trace"] is False and notes["api_500"] == 0 and notes["api_traces"] == 0, notes
    assert notes["api_without_retry_after"] == 0, notes
    # The check that ended while the disk was full was kept in memory and stored once there was room; the
    # customer whose photo was refused could send it again.
    assert sorted(notes["status_while_full"].values()) == ["consented", "live"], notes
    assert set(notes["statuses"].values()) == {"approved"} and notes["results_told"] == ["approved", "approved"], tally
    assert tally.webhooks_delivered == tally.webhooks_expected == 2


async def test_a_step_of_one_instances_wall_clock_ends_no_check_and_expires_nothing(postgres, tmp_path):
    """Instance a's wall clock two hours ahead, then two hours behind: heartbeats, owners, expiry and the
    webhooks' signed times are on the cluster's clock, so neither instance takes the other's check."""
    tally = await faults.clock(postgres, tmp_path)
    notes = tally.notes
    assert tally.sessions_lost == 0 and tally.decided_twice == 0, tally
    assert notes["live_checks_ended_while_stepped"] == 0 and notes["waiting_sessions_expired"] == 0, notes
    assert notes["results_told"] == ["approved", "approved"], notes
    assert tally.webhooks_delivered == tally.webhooks_expected == 2
    assert notes["signatures_a_receiver_refuses"] == 0, notes


async def test_killing_the_instance_of_a_live_check_in_chromium_is_told_at_once_and_finished_on_the_other(postgres, tmp_path):
    """The page-side case of the kill: Debian's Chromium through haproxy (deploy/haproxy.cfg)."""
    from tests.support.instances import haproxy_binary

    pytest.importorskip("playwright.async_api", reason="the browser case needs the playwright package")
    from e2e.support.browser import CHROMIUM

    if haproxy_binary() is None or not CHROMIUM.is_file():
        pytest.skip("needs Debian's haproxy and chromium")
    tally = await faults.kill_page(postgres, tmp_path)
    notes = tally.notes
    assert tally.sessions_lost == 0 and tally.decided_twice == 0, tally
    assert tally.sessions_decided == tally.sessions_started == 1
    assert notes["message"]["error"] == "connection" and "retry" in notes["message"]["offers"], notes
    assert notes["result_shown"] == "approved" and set(notes["statuses"].values()) == {"approved"}, notes
    assert notes["sticky_after"] != [notes["killed"]], notes  # decided on the instance that survived
    # One attempt allowed: the interrupted one was given back (as `interrupted`), the decided one counted.
    assert notes["attempts"] == {"live": 1, "final": 1, "max": 1}, notes
    assert "status.id_uploaded interrupted" in notes["moves"] and notes["moves"].count("status.live") == 2, notes
    assert tally.webhooks_delivered == tally.webhooks_expected == 1 and notes["webhooks_delivered_more_than_once"] == 0, tally
    assert notes["live_after_kill_s_max"] is not None and notes["live_after_kill_s_max"] <= 10 * notes["owner_timeout_s"], notes
