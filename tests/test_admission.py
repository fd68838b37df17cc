"""Admission by measured capacity and the waiting line (server/flow/admission.py), and the pieces that
feed it: the built-in synthetic face and the per-step analysis rate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.flow.admission import (
    ASK_SLACK_S,
    HOLD_S,
    KEEP_PLACE_S,
    PROCESS_FACTOR,
    RECEIVE_LAG_LIMIT_MS,
    RECEIVE_LAG_MIN_LOAD,
    SOON_RETRY_S,
    Admission,
    FrameCost,
    capacity_sessions,
)
from server.liveness.analyzer import frame_due
from server.liveness.challenges import parse_challenges
from server.liveness.engine import LivenessEngine
from server.liveness.rates import StepRates
from server.liveness.signals import FrameSignals
from server.models.landmarker import synthetic_face, time_on_synthetic_face
from server.models.loader import landmarker_file, new_landmarker

SIGNALS = Path(__file__).parent / "fixtures" / "signals"


def admission_for(sessions: int) -> Admission:
    """An admission whose measured cost carries exactly `sessions` checks at 15 fps on 2 cores."""
    admission = Admission(cores=2)
    admission.cost.ms = 2 * 1000 * 0.85 / (15 * sessions) - 1e-6
    admission.cost.source = "live"
    admission.cost.proven_load = sessions  # it has carried them before: no climb
    return admission


def test_capacity_follows_the_measured_cost_within_its_bounds():
    assert capacity_sessions(10.0, cores=2, fps=15) == 11
    assert capacity_sessions(20.0, cores=2, fps=15) == 5  # a machine half as fast carries half as many
    assert capacity_sessions(10.0, cores=2, fps=10) == 17  # a lower required rate carries more
    assert capacity_sessions(10.0, cores=2, fps=15, bound=4) == 4  # MAX_LIVE_SESSIONS is an upper bound
    assert capacity_sessions(500.0, cores=2, fps=15) == 1  # however slow, one check at a time goes through
    assert capacity_sessions(None, cores=2, fps=15, bound=3) == 3  # unmeasured: the bound alone
    assert capacity_sessions(None, cores=2, fps=15) == 1
    # One analysis worker on two cores: the worker's time is the limit.
    assert capacity_sessions(10.0, cores=2, fps=15, analysis_ms=20.0, workers=1) == 2


def test_the_cost_is_estimated_first_then_measured_on_live_frames():
    cost = FrameCost()
    cost.estimate(10.0)
    assert cost.source == "synthetic" and cost.ms == 10.0 * PROCESS_FACTOR
    # 12 ms of process CPU per analysed frame, 100 frames a second.
    cpu, now = 50.0, 1000.0
    for _ in range(300):
        cpu, now = cpu + 0.012, now + 0.01
        cost.frame(8.0, cpu, now)
    assert cost.source == "live" and cost.ms == pytest.approx(12.0, abs=0.01)
    assert cost.analysis_ms == pytest.approx(8.0, abs=0.01)  # recorded numbers fed in, not a timing
    cost.estimate(1.0)  # a later estimate never replaces live readings
    assert cost.source == "live" and cost.ms == pytest.approx(12.0, abs=0.01)
    # After a pause the idle time between frames is not counted as their cost.
    cost.frame(8.0, cpu + 30.0, now + 600.0)
    cpu, now = cpu + 30.0, now + 600.0
    for _ in range(300):
        cpu, now = cpu + 0.012, now + 0.01
        cost.frame(8.0, cpu, now)
    assert abs(cost.ms - 12.0) < 0.01


def test_the_cpu_clock_is_read_only_when_a_reading_opens_or_closes():
    cost, reads, state = FrameCost(), [], {"cpu": 50.0}

    def clock() -> float:
        reads.append(state["cpu"])
        return state["cpu"]

    now = 1000.0
    for _ in range(121):  # 100 frames a second: a reading closes every 100 frames (1 s)
        state["cpu"], now = state["cpu"] + 0.012, now + 0.01
        cost.frame(8.0, clock, now)
    assert len(reads) == 2 and cost.source == "live" and cost.ms == pytest.approx(12.0, abs=0.01)


def feed_readings(cost: FrameCost, load: int, readings: int = 1, now: float = 1000.0) -> float:
    """Analysed frames at 12 ms of process CPU each, 100 a second, with `load` checks live throughout."""
    cpu = 50.0
    for _ in range(readings * 120 + 1):
        cpu, now = cpu + 0.012, now + 0.01
        cost.frame(8.0, cpu, now, load)
    return now


def test_the_service_climbs_to_its_capacity_one_check_at_a_time():
    admission = Admission(cores=2)
    admission.cost.estimate(2.0)  # a synthetic estimate that would carry far too many at once
    assert admission.capacity(15) > 10 and admission.room(15) == 1
    assert admission.ask("a", live=0, now=0, fps=15).admitted
    waiting = admission.ask("b", live=1, now=0, fps=15)
    assert not waiting.admitted and waiting.retry_after_s < 3  # climbing: ask again soon
    now = feed_readings(admission.cost, load=1)
    assert admission.cost.proven_load == 1 and admission.room(15) == 2
    assert admission.ask("b", live=1, now=1, fps=15).admitted
    # A window the load dropped in proves only the lower load.
    cost = FrameCost()
    feed_readings(cost, load=3)
    cost.frame(8.0, 100.0, now + 1, 1)
    assert cost.proven_load == 3
    # At the measured capacity the climb stops: room is the capacity.
    admission.cost.proven_load = 50
    assert admission.room(15) == admission.capacity(15) == capacity_sessions(12.0, cores=2, fps=15)
    full = admission.capacity(15)
    assert admission.ask("z", live=full, now=2, fps=15).retry_after_s == 1  # next in line: a place opens any moment
    for i in range(full):
        admission.ask(f"y{i}", live=full, now=2, fps=15)
    assert admission.ask("x", live=full, now=2, fps=15).retry_after_s == 3  # further back: the usual pace


def test_checks_beyond_capacity_wait_in_line_and_get_in_first_come_first_served():
    admission = admission_for(2)
    assert admission.capacity(15) == 2
    assert admission.ask("a", live=0, now=0, fps=15).admitted
    assert admission.ask("b", live=1, now=0, fps=15).admitted
    c = admission.ask("c", live=2, now=1, fps=15)
    d = admission.ask("d", live=2, now=2, fps=15)
    assert not c.admitted and c.position == 1 and c.joined
    assert not d.admitted and d.position == 2 and d.joined and d.wait_s > c.wait_s
    again = admission.ask("c", live=2, now=4, fps=15)
    assert not again.admitted and again.position == 1 and not again.joined  # asking again keeps the place
    # A place frees: the newcomer cannot take it from those in line, the second in line waits for the first.
    assert admission.ask("e", live=1, now=5, fps=15).position == 3
    assert not admission.ask("d", live=1, now=5, fps=15).admitted
    c_in = admission.ask("c", live=1, now=6, fps=15)
    assert c_in.admitted and c_in.waited_s == 5.0
    assert admission.ask("d", live=2, now=7, fps=15).position == 1
    assert admission.snapshot(live=2, now=7, fps=15)["waiting"] == 2


def test_a_page_that_stops_asking_loses_its_place():
    admission = admission_for(1)
    admission.ask("a", live=0, now=0, fps=15)
    b = admission.ask("b", live=1, now=0, fps=15)
    assert b.position == 1 and b.retry_after_s == SOON_RETRY_S  # next in line: asks every second
    assert admission.ask("c", live=1, now=0, fps=15).position == 2
    # c asks on schedule, b missed an ask: b keeps its place but no longer counts as ahead of c.
    assert admission.ask("c", live=1, now=SOON_RETRY_S + ASK_SLACK_S + 0.5, fps=15).position == 1
    assert admission.snapshot(live=1, now=SOON_RETRY_S + ASK_SLACK_S + 0.5, fps=15)["waiting"] == 2
    assert admission.snapshot(live=1, now=SOON_RETRY_S + ASK_SLACK_S + 0.5, fps=15)["waiting_present"] == 1
    # About two missed asks: b's place is gone; had it asked meanwhile, it would have kept it.
    for now in (6.0, 9.0):
        admission.ask("c", live=1, now=now, fps=15)
    assert KEEP_PLACE_S < 9.0 < 2 * KEEP_PLACE_S
    assert [p.session_id for p in admission.line] == ["c"]
    admission.leave("c")
    assert admission.snapshot(live=1, now=9.0, fps=15)["waiting"] == 0


# Recorded sequences: (time, who asks, checks live) at capacity 2. Departed customers ask once and never
# again (a closed tab, a "try again" that made a new session); present ones ask when told to.
DEPARTED_THEN_PRESENT = [
    (0.0, "a", 0), (0.0, "b", 1),  # both places taken
    *[(0.1 * i, f"gone{i}", 2) for i in range(1, 9)],  # eight customers ask once and leave without a word
    (1.0, "p", 2),  # a present customer, ninth in line
]


def replay(admission: Admission, sequence) -> dict:
    answers = {}
    for now, who, live in sequence:
        answers[who] = admission.ask(who, live=live, now=now, fps=15)
    return answers


def test_customers_who_left_cannot_keep_a_free_place_from_a_present_customer():
    admission = admission_for(2)
    answers = replay(admission, DEPARTED_THEN_PRESENT)
    assert not answers["p"].admitted and answers["p"].position > 2
    # p asks again on schedule while both places are still taken: those who left are not ahead any more.
    now, asked = 1.0, []
    while now < 6.0:
        now += answers["p"].retry_after_s
        answers["p"] = admission.ask("p", live=2, now=now, fps=15)
        asked.append(answers["p"].position)
    assert asked[-1] == 1
    # A place frees: p, the only one present, gets it at its next ask, although eight left before it.
    assert admission.snapshot(live=1, now=now, fps=15)["waiting"] >= 1
    admitted = admission.ask("p", live=1, now=now + 0.5, fps=15)
    assert admitted.admitted and admitted.waited_s == now + 0.5 - 1.0


def test_a_free_place_goes_to_whoever_asks_when_those_ahead_do_not_claim_it():
    admission = admission_for(1)
    admission.ask("a", live=0, now=0, fps=15)
    admission.ask("first", live=1, now=9.0, fps=15)
    assert admission.ask("first", live=1, now=10.0, fps=15).position == 1
    # The first in line asks on schedule, so it is waited for when the place frees; it never asks again.
    behind = admission.ask("behind", live=0, now=10.2, fps=15)
    assert not behind.admitted and behind.position == 2  # held for the first in line, briefly
    assert admission.ask("behind", live=0, now=10.2 + HOLD_S, fps=15).admitted  # not claimed: the place is not left idle


def test_a_customer_who_asked_once_does_not_hold_a_free_place():
    admission = admission_for(1)
    admission.ask("a", live=0, now=0, fps=15)
    assert admission.ask("once", live=1, now=1.0, fps=15).position == 1  # then closes the tab, unsaid
    assert admission.ask("next", live=0, now=1.2, fps=15).admitted


def test_the_first_present_customer_gets_a_freed_place():
    admission = admission_for(1)
    admission.ask("a", live=0, now=0, fps=15)
    for who in ("one", "two", "three"):
        admission.ask(who, live=1, now=1.0, fps=15)
    # "one" left silently; "two" and "three" keep asking. The place frees at 4.0.
    for now in (2.0, 3.0):
        admission.ask("two", live=1, now=now, fps=15)
        admission.ask("three", live=1, now=now, fps=15)
    assert not admission.ask("three", live=0, now=4.0, fps=15).admitted  # "two" is present and ahead
    assert admission.ask("two", live=0, now=4.1, fps=15).admitted


def test_a_new_session_of_the_same_customer_takes_over_the_old_place():
    admission = admission_for(1)
    admission.ask("a", live=0, now=0, fps=15)
    admission.ask("old", live=1, now=1, fps=15, keys=("browser:m|addr|dev1",))
    admission.ask("other", live=1, now=1, fps=15, keys=("browser:m|addr|dev2",))
    again = admission.ask("new", live=1, now=2, fps=15, keys=("browser:m|addr|dev1", "reference:m|order-1"))
    assert again.position == 1 and not again.joined
    assert [p.session_id for p in admission.line] == ["new", "other"]
    # The same merchant reference from another browser: still the same customer, still one place.
    assert admission.ask("newer", live=1, now=3, fps=15, keys=("browser:m|addr|dev3", "reference:m|order-1")).position == 1
    assert [p.session_id for p in admission.line] == ["newer", "other"]
    admitted = admission.ask("newer", live=0, now=3.5, fps=15)
    assert admitted.admitted and admitted.waited_s == 2.5  # counted from when the customer first joined


def test_a_page_that_says_it_left_frees_its_place_at_once():
    admission = admission_for(1)
    admission.ask("a", live=0, now=0, fps=15)
    admission.ask("left", live=1, now=1, fps=15)
    admission.ask("p", live=1, now=1, fps=15)
    admission.leave("left")
    assert admission.ask("p", live=0, now=1.5, fps=15).admitted


def test_a_shared_line_admits_where_a_place_is_free_in_arrival_order():
    """Several instances, one line (server/flow/cluster_line.py): `elsewhere` is the other instances' free places."""
    admission = admission_for(1)
    admission.ask("a", live=0, now=0, fps=15)
    for now in (1.0, 2.0):  # both wait on this full instance, asking on schedule
        admission.ask("first", live=1, now=now, fps=15, elsewhere={"b": 0})
        admission.ask("second", live=1, now=now + 0.1, fps=15, elsewhere={"b": 0})
    # A place frees on b: not for the second, whose page asks first, but for the first in line.
    assert not admission.ask("second", live=1, now=2.5, fps=15, elsewhere={"b": 1}).admitted
    first = admission.ask("first", live=1, now=2.6, fps=15, elsewhere={"b": 1})
    assert first.admitted and first.instance == "b" and first.waited_s == 1.6
    assert [p.session_id for p in admission.line] == ["second"]
    # A place here is taken before one elsewhere.
    assert admission.ask("second", live=0, now=3.0, fps=15, elsewhere={"b": 1}).instance is None


def test_the_climb_proceeds_with_checks_ending_and_starting_and_a_line_of_departed_customers():
    admission = Admission(cores=2)
    admission.cost.estimate(2.0)
    now, cpu, live, asked, admitted = 1000.0, 50.0, 0, 0, 0
    # Every second a new customer arrives (half of them leave at once when told to wait), and one of the
    # live checks ends every other second.
    while now < 1120.0 and admission.room(15) < admission.capacity(15):
        asked += 1
        answer = admission.ask(f"c{asked}", live=live, now=now, fps=15)
        if answer.admitted:
            live, admitted = live + 1, admitted + 1
        if asked % 2 == 0 and live > 1:
            live -= 1
        for _ in range(max(1, live) * 15):  # a second of analysed frames at 15 fps per live check
            cpu, now = cpu + 0.012, now + 1 / (15 * max(1, live))
            admission.cost.frame(8.0, cpu, now, max(1, live))
    assert admission.room(15) == admission.capacity(15) and admitted > admission.capacity(15)


def test_the_wait_estimate_follows_the_length_of_checks():
    admission = admission_for(1)
    admission.ask("a", live=0, now=0, fps=15)
    before = admission.ask("b", live=1, now=0, fps=15).wait_s
    for _ in range(30):
        admission.check_ended(60.0)
    assert admission.ask("b", live=1, now=1, fps=15).wait_s > 2 * before


def test_a_frame_is_due_at_the_rate_the_step_needs():
    assert frame_due(0.0, None, 15)
    assert frame_due(1.0, 0.9, None)  # no rate said: every frame
    at_30fps = [i / 30 for i in range(31)]
    for fps, expected in ((15, 15), (10, 10), (30, 30)):
        last, analysed = None, 0
        for t in at_30fps[1:]:
            if frame_due(t, last, fps):
                last, analysed = t, analysed + 1
        assert analysed == expected, fps


def test_the_synthetic_face_is_found_and_timed():
    landmarker = new_landmarker(landmarker_file())
    try:
        assert len(landmarker.get(synthetic_face())) == 1
        assert time_on_synthetic_face(landmarker, frames=8) > 0
    finally:
        landmarker.close()


# -- the analysis rate each step needs (server/liveness/engine.py: needed_fps) -----------------------


def recorded(name: str) -> list[FrameSignals]:
    return [FrameSignals.from_dict(row) for row in json.loads((SIGNALS / f"{name}.json").read_text())]


def replay_signals(frames: list[FrameSignals], challenges: str, paced: bool):
    """The engine's result on the frames the live connection would analyse (all of them, or paced by the
    rate each step needs), how many those were, and the (phase, rate) pairs seen."""
    engine = LivenessEngine(parse_challenges(challenges))
    fed, rates, last_t = 0, set(), None
    for frame in frames:
        if paced and not frame_due(frame.t, last_t, engine.needed_fps()):
            continue
        last_t, fed = frame.t, fed + 1
        rates.add((engine.phase.value, engine.needed_fps()))
        if engine.update(frame).result is not None:
            break
    return engine.result or engine.finish(frames[-1].t), fed, rates


@pytest.mark.parametrize(
    "name, challenges",
    [
        ("headturn_phone_selfie", "turn_left,turn_right"),
        ("headturn_phone_selfie", "turn_right,turn_left"),
        ("blink_phone_portrait", "blink,blink,blink"),
        ("blink_phone_portrait", "blink,turn_left"),
        ("talking_glasses_headturns", "look_up"),
        ("mouth_open", "open_mouth"),
    ],
)
def test_slow_steps_are_analysed_less_often_with_the_same_verdicts(name, challenges):
    frames = recorded(name)
    every, all_frames, _ = replay_signals(frames, challenges, paced=False)
    paced, fed, rates = replay_signals(frames, challenges, paced=True)
    assert (paced.passed, paced.reason, paced.detail) == (every.passed, every.reason, every.detail)
    assert [c.passed for c in paced.challenges] == [c.passed for c in every.challenges]
    assert fed < all_frames
    step = StepRates()
    assert ("start", step.of("neutral")) in rates  # the baseline: a neutral stretch, at its own rate
    if "blink" in challenges:
        assert ("challenge", step.of("blink")) in rates
    if "turn" in challenges:
        assert ("challenge", step.of("turn_left")) in rates and ("challenge", step.of("moving")) in rates  # once moving: its own rate


def test_a_check_analysed_slowly_still_completes_readings_and_the_climb_proceeds():
    # A busy machine analyses one check at 9 frames a second: a reading's 60 frames take over 6 s.
    cost, cpu, now = FrameCost(), 50.0, 1000.0
    for _ in range(200):
        cpu, now = cpu + 0.012, now + 1 / 9
        cost.frame(8.0, cpu, now, 1)
    assert cost.source == "live" and cost.proven_load == 1


def test_a_check_is_planned_at_its_steps_rates_weighted_by_their_share_of_its_time():
    rates = StepRates({"start": 0.0, "blink": 8.0}, send_fps=20.0)
    assert rates.effective("start") == 20.0 and rates.effective("blink") == 8.0  # 0: every frame sent
    # Planned at what the analysis takes of the frames sent: 8 of 20 is every third frame, 6.67.
    assert rates.planned_fps({"start": 0.25, "blink": 0.75}) == 10.0
    planned = StepRates().planned_fps()
    assert 0 < planned < StepRates().send_fps  # the waits for a movement need fewer frames than the page sends
    # The admission plans by it: twice the rate, half the checks.
    admission = Admission(cores=2)
    admission.cost.ms, admission.cost.source = 10.0, "live"
    assert admission.capacity(planned / 2) >= 2 * admission.capacity(planned) - 1


def test_each_step_is_sent_at_its_own_rate_or_that_of_the_steps_its_frames_may_lead_to():
    from server.liveness.challenges import Challenge
    from server.liveness.rates import MOVING, NEUTRAL, RETURN, START, STEPS

    rates = StepRates()
    for step in STEPS:
        # Never fewer than the step analyses of every frame sent now (12 of 20: every second one, 10), nor more than the page sends.
        assert rates.on_full_stream(step) <= rates.sent_fps(step) <= rates.send_fps
    # A wait for a neutral face: its next frame may begin the stretch that needs every frame.
    assert rates.sent_fps(START) == rates.sent_fps(RETURN) == rates.sent_fps(NEUTRAL) == rates.send_fps
    assert rates.sent_fps(Challenge.BLINK.value) == rates.send_fps
    # A wait for a movement is sent at least at the movement's rate: the page hears of it a round trip late.
    waits = [c.value for c in Challenge if c != Challenge.BLINK]
    assert all(rates.sent_fps(MOVING) <= rates.sent_fps(w) < rates.send_fps for w in waits)
    assert rates.on_full_stream(MOVING) == rates.send_fps / 2 and rates.on_full_stream(Challenge.SMILE.value) == rates.send_fps / 3
    assert rates.with_sent({}).sent_fps(MOVING) == rates.send_fps  # nothing set: every frame


def test_a_check_sent_at_its_steps_rates_is_planned_at_what_the_analysis_takes_of_them():
    from server.liveness.challenges import Challenge
    from server.liveness.rates import MOVING

    by_step, every_frame = StepRates(), StepRates().with_sent({})
    smile = Challenge.SMILE.value
    # A smile awaited at 8: every third frame of 20 (6.67); of the 10 the page sends, every second one (5).
    assert every_frame.analysed_fps(smile) == 20 / 3 and by_step.analysed_fps(smile) == 5.0
    # The movement at 12 takes every frame of the 10 sent: the same frames as every second one of 20.
    assert by_step.analysed_fps(MOVING) == every_frame.analysed_fps(MOVING) == 10.0
    assert by_step.planned_fps() < every_frame.planned_fps()
    margins = by_step.with_margins()[smile]
    assert margins["sent_fps"] == 10.0 and margins["analysed_fps"] == 5.0


class Readings:
    """Cost readings fed one after another: analysed frames 100 a second, each at the cost's own CPU time."""

    def __init__(self, cost: FrameCost) -> None:
        self.cost, self.cpu, self.now = cost, 50.0, 1000.0
        self.cpu_s = (cost.ms or 12.0) / 1000
        self._frame(1, None)  # opens the first reading

    def feed(self, load: int, lag_ms: float | None, readings: int = 1) -> bool:
        """Whole readings, each with `load` checks live throughout and every frame `lag_ms` late; whether one
        let another check in."""
        opened = False
        for _ in range(readings):
            opened |= self._frame(load, lag_ms)
            while self.cost._window_frames:
                opened |= self._frame(load, lag_ms)
        return opened

    def _frame(self, load: int, lag_ms: float | None) -> bool:
        self.cpu, self.now = self.cpu + self.cpu_s, self.now + 0.01
        return self.cost.frame(8.0, self.cpu, self.now, load, lag_ms)


def test_a_receive_path_falling_behind_holds_the_room_below_its_load_until_it_catches_up():
    """Measured on a fast host: the receive path fell behind at 21-22 checks while the CPU cost said 21 fitted
    (docs/benchmarks.md). The CPU cost does not see it; the frames' lag does."""
    admission = admission_for(30)
    readings = Readings(admission.cost)
    readings.feed(load=21, lag_ms=12.0, readings=2)  # keeping up
    assert admission.cost.receive_ceiling is None and admission.room(15) == 30
    assert not readings.feed(load=22, lag_ms=RECEIVE_LAG_LIMIT_MS * 2)  # falling behind
    assert admission.cost.receive_ceiling == 21 and admission.room(15) == 21
    assert admission.cost.proven_load == 30 and admission.capacity(15) == 30  # the CPU cost is not wrong: it is not the limit
    assert not admission.ask("late", live=21, now=readings.now, fps=15).admitted
    assert admission.snapshot(21, readings.now, 15)["receive_ceiling"] == 21
    readings.feed(load=21, lag_ms=RECEIVE_LAG_LIMIT_MS * 0.75)  # not falling further behind, not caught up either
    assert admission.cost.receive_ceiling == 21
    assert readings.feed(load=21, lag_ms=RECEIVE_LAG_LIMIT_MS * 0.25)  # caught up: one more check at a time (a held answer may take it)
    assert admission.cost.receive_ceiling == 22 and admission.room(15) == 22
    for ceiling in range(23, 31):
        readings.feed(load=ceiling - 1, lag_ms=5.0)
        assert admission.cost.receive_ceiling == ceiling
    readings.feed(load=30, lag_ms=5.0)  # past the load proven before: the climb is the usual one again
    assert admission.cost.receive_ceiling is None and admission.room(15) == 30


def test_a_few_checks_or_an_unknown_lag_never_hold_the_room():
    """With fewer checks than RECEIVE_LAG_MIN_LOAD a slow stream is one customer's link, not the server's."""
    cost = FrameCost()
    readings = Readings(cost)
    readings.feed(load=RECEIVE_LAG_MIN_LOAD - 1, lag_ms=RECEIVE_LAG_LIMIT_MS * 10)
    assert cost.receive_ceiling is None and cost.proven_load == RECEIVE_LAG_MIN_LOAD - 1
    readings.feed(load=RECEIVE_LAG_MIN_LOAD + 2, lag_ms=None)  # frames without timestamps
    assert cost.receive_ceiling is None and cost.proven_load == RECEIVE_LAG_MIN_LOAD + 2 and cost.lag_ms is None
