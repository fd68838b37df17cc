"""The recorded check's timetable, and what counts as following it."""

from __future__ import annotations

from server.liveness.challenges import Challenge
from server.liveness.engine import ChallengeRecord
from server.liveness.schedule import ASK_LATE_S, LEAD_IN_S, SLOT_S, RecordingSchedule, off_schedule


def test_the_timetable_has_a_lead_in_then_one_slot_per_challenge():
    schedule = RecordingSchedule(3)
    assert schedule.prompts_at == [LEAD_IN_S, LEAD_IN_S + SLOT_S, LEAD_IN_S + 2 * SLOT_S]
    assert schedule.duration_s > schedule.prompts_at[-1] + SLOT_S - 1e-9
    assert schedule.length_ok(schedule.duration_s) and schedule.length_ok(schedule.duration_s - 0.5)
    assert not schedule.length_ok(schedule.duration_s - 3) and not schedule.length_ok(schedule.duration_s + 5)


def done(challenge: Challenge, asked: float, completed: float | None) -> ChallengeRecord:
    return ChallengeRecord(challenge, asked_at=asked, completed_at=completed, passed=completed is not None)


def test_movements_in_their_slots_follow_the_timetable():
    schedule = RecordingSchedule(2)
    first, second = schedule.prompts_at
    records = [done(Challenge.BLINK, first + 0.1, first + 0.8), done(Challenge.TURN_LEFT, second, second + 2.0)]
    assert off_schedule(records, schedule) is None


def test_a_challenge_asked_long_after_its_prompt_is_off_schedule():
    """The face was not neutral when the prompt showed: the clip's movements were made for other times."""
    schedule = RecordingSchedule(1)
    late = [done(Challenge.TURN_LEFT, schedule.prompts_at[0] + ASK_LATE_S + 0.5, None)]
    assert "after its prompt" in off_schedule(late, schedule)


def test_a_challenge_done_after_its_slot_is_off_schedule():
    schedule = RecordingSchedule(2)
    first = schedule.prompts_at[0]
    records = [done(Challenge.BLINK, first, first + SLOT_S + 0.5), done(Challenge.BLINK, first + SLOT_S + 1, None)]
    assert "after its slot" in off_schedule(records, schedule)
