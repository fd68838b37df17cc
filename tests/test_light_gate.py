"""The light gate (server/liveness/light.py) on recorded face noise, and the engine waiting on it."""

from __future__ import annotations

from dataclasses import replace

from server.liveness.challenges import parse_challenges
from server.liveness.engine import Hint, LivenessEngine, Phase, Reason
from server.liveness.light import Light, LightGate
from tests.test_engine import NEUTRAL, timeline

# Face noise after the exposure rule of the first frames a check scores, as the live path receives them (eval-pad
# --vp8-kbps 600 of the shared clips' generated copies: the calibration's own data, the encoder's first frame
# the noisiest): grey levels, in the order they were scored.
DIM_ROOM_COPY = (7.87, 3.33, 2.11, 2.96, 1.93, 5.48, 2.64, 2.31)  # gen_genuine_low_light_blinkdet_man (the live tests' clip)
DIM_SOME_FRAMES_CLEAN = (8.83, 3.24, 2.09, 1.53, 1.89, 3.25, 1.51, 1.9)  # gen_genuine_low_light_lp_d7_woman: frames 3 and 6 read clean
DARKER_SKIN_ORDINARY_LIGHT = (0.63, 0.92, 1.27, 1.42, 1.51, 1.51, 1.53, 1.54)  # gen_genuine_low_resolution_lestari_webcam_man
LIT = (0.34, 0.43, 0.51, 0.53)  # gen_genuine_low_resolution_blinkdet_man
GATE = LightGate(noisy_above=1.69)  # the shipped calibration's noisy_above

# The same, as a real Chromium sends the blink clip in a dim room (pad_scenes.low_light, 3.4 as a file) through
# the page, the server asking it to start at the cap (rtc/bandwidth.py): (stream seconds, face noise) of the
# frames the running PAD scored (e2e/test_light.py's camera, 7 December 2026). The encoder starts smooth: its
# first frames read as a lit face's would, the room's noise settles from about 0.8 s.
CHROMIUM_DIM_ROOM = ((0.12, 0.79), (0.33, 1.00), (0.55, 1.58), (0.77, 1.87), (1.16, 2.03), (1.47, 2.08), (1.73, 2.07), (1.99, 1.91),
                     (2.21, 2.23), (2.47, 1.99))
CHROMIUM_LIT = ((0.14, 0.42), (0.42, 0.54), (0.68, 0.56), (0.90, 0.58), (1.16, 0.58), (1.38, 0.56), (1.77, 0.56), (2.07, 0.56))


def test_a_dim_room_is_dark_from_its_first_frame_and_never_opens():
    assert GATE.judge(DIM_ROOM_COPY[:1]) == Light.DARK
    assert all(GATE.judge(DIM_ROOM_COPY[: n + 1]) == Light.DARK for n in range(len(DIM_ROOM_COPY)))
    assert GATE.opens_at(DIM_ROOM_COPY) is None


def test_one_clean_frame_does_not_open_it():
    assert GATE.judge(DIM_SOME_FRAMES_CLEAN[3:4]) == Light.UNKNOWN  # alone (as a first frame), 1.53 is not enough
    assert GATE.judge(DIM_SOME_FRAMES_CLEAN[:4]) == Light.DARK
    assert GATE.opens_at(DIM_SOME_FRAMES_CLEAN) is None


def test_darker_skin_in_ordinary_light_and_a_lit_face_open_it_on_the_third_frame():
    for noises in (DARKER_SKIN_ORDINARY_LIGHT, LIT):
        assert GATE.judge(noises[:2]) == Light.UNKNOWN
        assert GATE.judge(noises[:3]) == Light.LIT
        assert GATE.opens_at(noises) == 2


def test_a_room_lit_after_a_while_opens_it_once_the_last_frames_are_clean():
    assert GATE.opens_at(DIM_ROOM_COPY[:3] + LIT) == 4  # median of (2.11, 0.34, 0.43)


def test_the_senders_smooth_start_never_opens_it_for_a_dim_room():
    """Judged on every frame, the dim room's first three (median 1.00) opened the gate: the challenges
    started and the check's own noise then held it at review. Only frames from `settle_s` on may say lit."""
    at, noises = zip(*CHROMIUM_DIM_ROOM, strict=True)
    assert GATE.opens_at(noises[:3]) == 2  # the frames alone, as if all of the steady stream
    assert GATE.opens_at(noises, at) is None
    assert all(GATE.judge(noises[: n + 1], at[n], measured_s=at[: n + 1]) != Light.LIT for n in range(len(at)))
    assert GATE.judge(noises[:5], at[4], measured_s=at[:5]) == Light.DARK  # dark as soon as the last three say so


def test_a_lit_face_opens_it_on_its_first_three_frames_of_the_steady_stream():
    at, noises = zip(*CHROMIUM_LIT, strict=True)
    assert GATE.judge(noises[:3], at[2], measured_s=at[:3]) == Light.UNKNOWN  # lit, but the encoder's start
    opened = GATE.opens_at(noises, at)
    assert opened is not None and at[opened - 2] >= GATE.settle_s > at[opened - 3]


def test_unmeasured_frames_wait_a_little_then_let_pads_own_rules_judge():
    assert GATE.judge((), waited_s=1.0) == Light.UNKNOWN
    assert GATE.judge((None, None), waited_s=3.0) == Light.LIT
    assert GATE.judge((9.0,), waited_s=30.0) == Light.DARK  # measured dark stays dark however long
    assert GATE.opens_at((None, None, None)) is None
    assert GATE.opens_at((None, None, None), waited_s=(0.0, 2.0, 3.5)) == 2  # offline, the clip's clock


def test_a_first_score_still_on_its_way_is_waited_for_longer_but_not_forever():
    """A saturated machine: the scoring threads yield to the analysis, the first score is late. A dim room
    must not be let through unmeasured because of that; a face the scorer answered for without a noise
    (SCRFD found none) is not waited for longer."""
    assert GATE.judge((), waited_s=3.5, first_scoring=True) == Light.UNKNOWN
    assert GATE.judge((), waited_s=GATE.first_score_grace_s, first_scoring=True) == Light.LIT
    assert GATE.judge((9.0,), waited_s=3.5) == Light.DARK  # the late score, once there, decides
    assert GATE.judge((None,), waited_s=3.5) == Light.LIT


def test_the_running_verdict_says_when_its_first_score_is_on_its_way():
    from server.spoof.pad import PadFramePolicy, PadThresholds
    from server.spoof.running import RunningPad

    running: RunningPad[str] = RunningPad(PadFramePolicy(), PadThresholds(noisy_above=1.69, noisy_review=0.96))
    assert not running.first_scoring()  # nothing offered: nothing to wait for
    running.offer(0.0, "first", 45.0)
    assert running.first_scoring()  # waiting for a scoring thread
    slot, _ = running.take()
    assert running.first_scoring()  # being scored
    running.scored(slot, None, 1.0)  # no face found: answered all the same
    assert not running.first_scoring()
    running.offer(1.0, "second", 45.0)
    assert not running.first_scoring()


def test_the_gate_is_off_without_a_noise_limit():
    assert LightGate(0.0).judge(DIM_ROOM_COPY) == Light.LIT


def feed(engine: LivenessEngine, frames, noises) -> list:
    prompts = []
    for frame in frames:
        verdict = engine.update(frame, noises)
        prompts.append(verdict.prompt)
        if verdict.result is not None:
            break
    return prompts


def test_the_challenges_wait_for_light_and_the_customer_is_asked_for_more():
    engine = LivenessEngine(parse_challenges("blink"), light_gate=GATE)
    prompts = feed(engine, timeline((3.0, {})), DIM_ROOM_COPY)
    assert engine.phase == Phase.START and engine.light == Light.DARK
    assert prompts[-1].hint == Hint.TOO_DARK  # "More light, please"
    feed(engine, timeline((0.5, {}), start=3.0), DIM_ROOM_COPY[:2] + LIT)
    assert engine.phase == Phase.CHALLENGE  # lit: the first challenge is asked


def test_the_challenges_wait_for_the_steady_stream():
    engine = LivenessEngine(parse_challenges("blink"), light_gate=GATE)
    frames = timeline((3.0, {}))
    at, noises = zip(*CHROMIUM_DIM_ROOM, strict=True)
    for frame in frames:
        seen = [i for i, t in enumerate(at) if t <= frame.t - frames[0].t]
        engine.update(frame, tuple(noises[i] for i in seen), False, tuple(frames[0].t + at[i] for i in seen))
    assert engine.phase == Phase.START and engine.light == Light.DARK
    engine = LivenessEngine(parse_challenges("blink"), light_gate=GATE)
    at, noises = zip(*CHROMIUM_LIT, strict=True)
    for frame in frames:
        seen = [i for i, t in enumerate(at) if t <= frame.t - frames[0].t]
        engine.update(frame, tuple(noises[i] for i in seen), False, tuple(frames[0].t + at[i] for i in seen))
    assert engine.phase == Phase.CHALLENGE


def test_it_waits_for_three_measured_frames_but_not_forever():
    engine = LivenessEngine(parse_challenges("blink"), light_gate=GATE)
    feed(engine, timeline((1.0, {})), LIT[:2])
    assert engine.phase == Phase.START and engine.light == Light.UNKNOWN and engine.hint is None
    feed(engine, timeline((2.5, {}), start=1.0), LIT[:2])
    assert engine.phase == Phase.CHALLENGE  # nothing more measured within the grace: PAD's own rules judge


def test_never_lit_ends_with_its_own_retryable_reason():
    engine = LivenessEngine(parse_challenges("blink"), light_gate=GATE, start_timeout_s=5.0)
    feed(engine, timeline((6.0, {})), DIM_ROOM_COPY)
    assert engine.result is not None and engine.result.reason == Reason.TOO_DARK and not engine.result.passed


def test_the_gate_only_holds_the_start_the_check_itself_is_pads():
    engine = LivenessEngine(parse_challenges("blink,blink"), light_gate=GATE)
    feed(engine, timeline((1.0, {})), LIT)
    assert engine.phase == Phase.CHALLENGE
    # Dimmed once the check runs: the engine goes on (PAD's noisy-face rule judges those frames).
    closed = replace(NEUTRAL, eye_closure_left=0.9, eye_closure_right=0.9, ear=0.05)
    frames = [replace(closed, t=1.0 + i / 30) for i in range(6)] + timeline((0.5, {}), start=1.2)
    feed(engine, frames, DIM_ROOM_COPY)
    assert engine.records[0].passed and engine.light == Light.LIT


def test_without_a_gate_nothing_changes():
    engine = LivenessEngine(parse_challenges("blink"))
    feed(engine, timeline((1.0, {})), DIM_ROOM_COPY)
    assert engine.phase == Phase.CHALLENGE


# -- eval-pad replays the same gate -----------------------------------------------------------------------


def clip_of(noises, live: float = 0.95):
    from realname_tools.eval_pad import Clip, ClipResult, FrameRecord

    records = [FrameRecord(t=i * 0.25, face_count=1, yaw=0.0, pitch=0.0, sharpness=100.0, brightness=45.0, face_px=150.0, reference=(0.0, 0.0),
                           live=(live, live), noise=n, detail=5.0) for i, n in enumerate(noises)]
    return ClipResult(Clip("clip.mp4", "genuine", "", "someone"), records=records)


def test_eval_pad_asks_a_dim_clip_for_light_with_the_same_gate():
    from realname_tools.eval_pad import replay
    from server.spoof.pad import PadFramePolicy, PadThresholds

    thresholds = PadThresholds(attack=0.4, review=0.7, noisy_above=1.69, noisy_review=0.96)
    assert replay(clip_of(DIM_ROOM_COPY), PadFramePolicy(), thresholds).asked_for_light
    lit = replay(clip_of(LIT * 3), PadFramePolicy(), thresholds)
    assert not lit.asked_for_light and lit.verdict.value == "pass"
    # Dark, then lit: the frames before the gate opened are forgotten, as the live check forgets them.
    later = replay(clip_of(DIM_ROOM_COPY[:3] + LIT * 3), PadFramePolicy(), thresholds)
    # Opened by its first three lit frames from 1 s on (settle_s), frames 4 to 6 of 15: the 8 after it.
    assert not later.asked_for_light and later.noise is not None and later.noise < 1.69 and len(later.check_scores) == 8
    assert not replay(clip_of(DIM_ROOM_COPY), PadFramePolicy(), thresholds, gate=False).asked_for_light
    unscored = replay(clip_of([None] * 16), PadFramePolicy(), thresholds)  # no face noise measured in 3.75 s
    assert not unscored.asked_for_light  # past the grace, PAD's own rules: unscored, to review


def test_cross_validation_counts_the_clips_the_gate_stopped_apart():
    from realname_tools.pad_crossval import ASKED_FOR_LIGHT, Fold, summarise_folds
    from server.spoof.pad import PadThresholds, PadVerdict
    from tests.test_eval_pad import _scored

    verdicts = ((_scored("a", "genuine", 0.9), ASKED_FOR_LIGHT), (_scored("a", "genuine", 0.9), PadVerdict.PASS),
                (_scored("a", "genuine", 0.5), PadVerdict.REVIEW), (_scored("a", "attack", 0.9), ASKED_FOR_LIGHT))
    summary = summarise_folds([Fold("a", frozenset({"b"}), PadThresholds(), verdicts)])
    assert summary["apcer"]["count"] == 0 and summary["attacks_asked_for_light"]["count"] == 1  # stopped is not accepted
    assert summary["genuine_asked_for_light"] == {**summary["genuine_asked_for_light"], "count": 1, "of": 3}
    assert summary["genuine_review_past_gate"]["count"] == 1 and summary["genuine_review_past_gate"]["of"] == 2
    assert summary["genuine_review_or_light"]["count"] == 2 and summary["bpcer"]["count"] == 0
    assert summary["per_person"][0]["genuine_asked_for_light"] == 1


def test_the_running_verdict_hands_the_noise_over_and_forgets_the_dark_frames():
    from server.spoof.pad import PadFramePolicy, PadThresholds
    from server.spoof.running import RunningPad

    running: RunningPad[str] = RunningPad(PadFramePolicy(), PadThresholds(noisy_above=1.69, noisy_review=0.96))
    for index, noise in enumerate(DIM_ROOM_COPY[:3]):
        running.offer(index * 0.25, f"dark {index}", 45.0)
        slot, _ = running.take()
        running.scored(slot, 0.9, 1.0, noise, 2.0)
    assert running.noises() == DIM_ROOM_COPY[:3] and GATE.judge(running.noises()) == Light.DARK
    assert running.measured() == (DIM_ROOM_COPY[:3], (0.0, 0.25, 0.5))  # with each frame's stream time
    running.restart()
    assert running.noises() == () and running.result().frames_scored == 0 and running.result().ms == 3.0  # the cost stays counted
    running.offer(1.0, "lit", 45.0)
    slot, _ = running.take()
    running.scored(slot, 0.95, 1.0, 0.5, 8.0)
    assert running.result().face_noise == 0.5


def test_lit_for_the_gate_and_dimmed_after_is_still_held_to_the_noisy_faces_threshold():
    """The attacker's way round the gate: light for the start, then a dim room where the noise hides a print's
    texture. The gate opened (no dark frame to forget), the frames of the check are noisy: the PAD rule's
    `noisy_review` holds the check, whatever the gate said."""
    from server.spoof.pad import PadFramePolicy, PadThresholds, PadVerdict
    from server.spoof.running import RunningPad

    running: RunningPad[str] = RunningPad(PadFramePolicy(), PadThresholds(attack=0.44, review=0.78, noisy_above=1.69, noisy_review=0.9625))
    noises = LIT[:3] + DIM_ROOM_COPY[2:] + DIM_ROOM_COPY[2:]
    for index, noise in enumerate(noises):
        if index == 3:
            assert GATE.judge(running.noises()) == Light.LIT  # the challenges start here
        running.offer(index * 0.25, f"frame {index}", 45.0)
        slot, _ = running.take()
        running.scored(slot, 0.95, 1.0, noise, 2.0)  # a score that passes a clean face (review 0.78)
    result = running.result()
    assert result.face_noise > 1.69 and result.verdict == PadVerdict.REVIEW


def test_lit_for_the_gate_and_dimmed_for_a_short_check_is_at_best_review():
    """The same attack with a long lit start and a short check: the lit frames are most of those kept, so the
    median noise is clean and the noisy face's threshold would not apply. The frames scored since the
    challenges started are noisy: the verdict is at best review, whatever the lit frames scored. A lit
    attack stays an attack (its lit frames are judged as any)."""
    from server.spoof.pad import PadFramePolicy, PadThresholds, PadVerdict
    from server.spoof.running import RunningPad

    thresholds = PadThresholds(attack=0.44, review=0.78, noisy_above=1.69, noisy_review=0.9625)

    def checked(start: tuple, check: tuple, score: float = 0.999) -> RunningPad[str]:
        running: RunningPad[str] = RunningPad(PadFramePolicy(), thresholds)
        for index, noise in enumerate(start + check):
            if index == len(start):
                running.check_started(index * 0.25)
            running.offer(index * 0.25, f"frame {index}", 45.0)
            slot, _ = running.take()
            running.scored(slot, score, 1.0, noise, 8.0)
        return running

    dimmed = checked(LIT * 2, DIM_ROOM_COPY[2:5]).result()
    assert dimmed.face_noise is not None and dimmed.face_noise < 1.69  # the lit start is most of the frames
    assert dimmed.check_noise is not None and dimmed.check_noise > 1.69 and dimmed.verdict == PadVerdict.REVIEW
    assert dimmed.to_dict()["check_noise"] == round(dimmed.check_noise, 2)
    lit = checked(LIT * 2, LIT[:3]).result()
    assert lit.verdict == PadVerdict.PASS and lit.check_noise is not None and lit.check_noise < 1.69
    assert checked(LIT * 2, DIM_ROOM_COPY[2:5], score=0.1).result().verdict == PadVerdict.ATTACK
    unstarted = checked(LIT * 2, ()).result()  # ended before the challenges: nothing of the check to judge apart
    assert unstarted.check_noise is None and unstarted.verdict == PadVerdict.PASS


# A lit face analysed at about 10 a second (the neutral face's rate), as a browser's capture clock times the frames.
ANALYSED_AT = (0.0, 0.1, 0.21, 0.3, 0.41, 0.5, 0.6, 0.71, 0.8, 0.92, 1.01, 1.1, 1.2, 1.31, 1.4, 1.5, 1.61, 1.7, 1.8, 1.9, 2.0)


def _first_lit(anchored: bool, unwanted: float) -> float:
    """The stream second at which the gate opens for a lit face analysed at ANALYSED_AT from 0.175 s, the frame
    at `unwanted` not wanted (mid-blink), each chosen frame scored at once."""
    from server.spoof.pad import PadFramePolicy, PadThresholds
    from server.spoof.running import RunningPad

    running: RunningPad[int] = RunningPad(PadFramePolicy(), PadThresholds(noisy_above=1.69, noisy_review=0.96))
    start = 0.175
    if anchored:
        running.anchor(start, GATE.settle_s)
    for rel in ANALYSED_AT:
        t = start + rel
        if rel != unwanted and running.due(t):
            running.offer(t, 0, 45.0)
            slot, _ = running.take()
            running.scored(slot, 0.95, 1.0, 0.5, 8.0)
        noises, at = running.measured()
        if GATE.judge(noises, rel, measured_s=[m - start for m in at]) == Light.LIT:
            return rel
    raise AssertionError("never lit")


def test_the_first_frame_that_may_say_lit_is_scored_at_once():
    """A frame chosen in the gap before `settle_s` can only say dark and puts the first one that may say lit
    off by up to a gap (with a busy scorer, longer): the sample chooses none there (SpreadSample anchor)."""
    assert _first_lit(anchored=True, unwanted=0.8) == 1.4  # frames at 1.01, 1.2 and 1.4 s of the stream
    assert _first_lit(anchored=False, unwanted=0.8) == 1.5  # 0.92 -> 1.1, 1.31, 1.5
    assert _first_lit(anchored=True, unwanted=-1.0) == 1.4  # the phase already right: nothing changes


def test_a_frame_a_hair_under_the_gap_is_not_put_off_a_whole_frame():
    from server.spoof.pad import SpreadSample

    sample: SpreadSample[int] = SpreadSample(limit=16, gap_s=0.2)
    for t in (0.0, 0.1, 0.199, 0.3, 0.38, 0.5):
        sample.add(t, 0)
    assert [t for t, _ in sample.items] == [0.0, 0.199, 0.38]  # 0.199 and 0.181 after (timing slack), not 0.3 and 0.5


def test_the_anchor_keeps_the_sample_spread_and_lit_only_from_the_steady_stream():
    from server.spoof.pad import SpreadSample

    sample: SpreadSample[int] = SpreadSample(limit=16, gap_s=0.2, start=0.0, anchor_s=GATE.settle_s)
    for t in (0.0, 0.1, 0.21, 0.31, 0.42, 0.52, 0.63, 0.73, 0.84, 0.94, 1.01, 1.11, 1.22, 1.32, 1.43):
        sample.add(t, 0)
    times = [t for t, _ in sample.items]
    assert times == [0.0, 0.21, 0.42, 0.63, 1.01, 1.22, 1.43]  # none at 0.84: 1.01 comes at once, not 1.11
    assert min(b - a for a, b in zip(times, times[1:], strict=False)) >= 0.2


def _gate_run(noises, gate_frames: int, busy_at: float | None = None):
    """A face analysed at ANALYSED_AT from 0.175 s with the gate's own frames (GateFrames) or without: the frames
    chosen by the sample, by the gate alone, the stream second the gate opened at (None: never), and the verdict.
    The frame at `busy_at` is replaced, while it waits, by the next one (a busy scorer)."""
    from server.spoof.pad import PadFramePolicy, PadThresholds
    from server.spoof.running import RunningPad

    running: RunningPad[int] = RunningPad(PadFramePolicy(), PadThresholds(noisy_above=1.69, noisy_review=0.96))
    start, opened, chosen = 0.175, None, []
    running.anchor(start, GATE.settle_s, gate_frames)
    for index, rel in enumerate(ANALYSED_AT):
        t = start + rel
        if running.due(t):
            running.offer(t, index, 45.0)
            chosen.append(round(rel, 2))
            if rel != busy_at:
                slot, _ = running.take()
                running.scored(slot, 0.95, 1.0, noises[index % len(noises)], 8.0)
        measured, at = running.measured()
        if opened is None and GATE.judge(measured, rel, measured_s=[m - start for m in at]) == Light.LIT:
            opened = rel
            running.check_started(t)
    return chosen, opened, running.result()


def test_the_gates_own_frames_open_it_two_analysed_frames_after_the_stream_settled():
    """The first three frames from settle_s on are scored as they come, not 0.2 s apart: lit at 1.2 s rather than
    1.4. The one the sample did not choose (1.1) is measured for the gate only: the verdict rests on the sample's
    frames, as before; after the start the gate chooses none."""
    sampled, before, verdict_before = _gate_run(LIT, gate_frames=0)
    chosen, opened, verdict = _gate_run(LIT, gate_frames=GATE.frames)
    assert before == 1.4 and opened == 1.2
    assert [t for t in chosen if t not in sampled] == [1.1]  # the gate's own frame; the sample's are unchanged
    assert verdict.scores == verdict_before.scores and verdict.frames_scored == verdict_before.frames_scored
    assert not _gate_run(DIM_ROOM_COPY, gate_frames=GATE.frames)[1]  # a dim room's frames still say dark


def test_a_gate_frame_never_scored_is_not_counted():
    """Replaced while it waited (a busy scorer), the gate's frame at 1.1 s is not one of its three: the next frame is."""
    chosen, opened, _ = _gate_run(LIT, gate_frames=GATE.frames, busy_at=1.1)
    assert chosen[chosen.index(1.01):][:4] == [1.01, 1.1, 1.2, 1.31] and opened == 1.31


def test_eval_pad_replays_the_gates_own_frames():
    from realname_tools.eval_pad import FrameRecord, scored_in_order
    from server.spoof.pad import PadFramePolicy

    records = [FrameRecord(t=round(i / 15, 3), face_count=1, yaw=0.0, pitch=0.0, sharpness=100.0, brightness=45.0, face_px=150.0,
                           reference=(0.0, 0.0), live=(0.9, 0.9), noise=0.5, detail=5.0) for i in range(30)]
    plain = [r.t for r in scored_in_order(records, PadFramePolicy(), GATE.settle_s)]
    gated = [r.t for r in scored_in_order(records, PadFramePolicy(), GATE.settle_s, GATE.frames)]
    assert [t for t in plain if t >= 1] == [1.0, 1.2, 1.4, 1.6, 1.8]
    assert [t for t in gated if t >= 1][:4] == [1.0, 1.067, 1.133, 1.2]  # 1 s on: three at once, then the sample's spacing
