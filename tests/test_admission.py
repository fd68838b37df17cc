"""Admission by measured capacity and the waiting line (server/flow/admission.py), and the pieces that
feed it: the built-in synthetic face and the per-step analysis rate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.flow.admission import KEEP_PLACE_S, PROCESS_FACTOR, Admission, FrameCost, capacity_sessions
from server.liveness.analyzer import frame_due
from server.liveness.challenges import parse_challenges
from server.liveness.engine import LivenessEngine, Thresholds
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
    assert admission.ask("z", live=admission.capacity(15), now=2, fps=15).retry_after_s == 3


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
    assert admission.ask("b", live=1, now=0, fps=15).position == 1
    assert admission.ask("c", live=1, now=0, fps=15).position == 2
    later = KEEP_PLACE_S / 2
    assert admission.ask("c", live=1, now=later, fps=15).position == 2
    assert admission.ask("c", live=1, now=KEEP_PLACE_S + 1, fps=15).position == 1  # b left without a word
    admission.leave("c")
    assert admission.snapshot(live=1, now=KEEP_PLACE_S + 1, fps=15)["waiting"] == 0


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
    th = Thresholds()
    assert ("start", 0.0) in rates  # the baseline is taken from every frame
    if "blink" in challenges:
        assert ("challenge", th.blink_fps) in rates
    if "turn" in challenges:
        assert ("challenge", th.slow_fps) in rates and ("challenge", 0.0) in rates  # once moving: every frame
