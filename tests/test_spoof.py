"""Anti-spoofing decisions and risk signals: pure logic on synthetic numbers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from server.liveness.challenges import Challenge
from server.liveness.engine import ChallengeRecord, LivenessResult
from server.reasons import Reason
from server.spoof.offer_client import ClientFamily, claimed_family, offer_traits
from server.spoof.pad import PadFramePolicy, PadResult, PadThresholds, PadVerdict, SpreadSample, aggregate, apply_pad
from server.spoof.running import CONFIDENT_FRAMES, RunningPad, confident_attack
from server.spoof.signals import (
    FINGERPRINT_ROW_STEP,
    Action,
    Level,
    SignalCode,
    StreamFacts,
    camera_label_signal,
    check_signals,
    client_signal,
    declared_signal,
    format_signals,
    frame_fingerprint,
    interarrival_jitter,
    reaction_signals,
    repeated_frames_signal,
    timing_signals,
)

TH = PadThresholds(attack=0.4, review=0.7)


@pytest.mark.parametrize("score, verdict", [(None, PadVerdict.UNSCORED), (0.0, PadVerdict.ATTACK), (0.39, PadVerdict.ATTACK),
                                            (0.4, PadVerdict.REVIEW), (0.69, PadVerdict.REVIEW), (0.7, PadVerdict.PASS), (1.0, PadVerdict.PASS)])
def test_thresholds_decide(score, verdict):
    assert TH.decide(score) == verdict


def test_thresholds_must_be_ordered():
    with pytest.raises(ValueError):
        PadThresholds(attack=0.8, review=0.5)


def test_median_ignores_a_few_odd_frames():
    assert aggregate([0.99, 0.98, 0.2, 0.97, 0.1]) == 0.97
    assert aggregate([0.01, 0.02, 0.9, 0.0]) == pytest.approx(0.015)
    assert aggregate([]) is None


def test_spread_sample_stays_bounded_and_spread_over_the_whole_check():
    sample: SpreadSample[int] = SpreadSample(limit=8, gap_s=0.3)
    for i in range(300):  # 10 s at 30 fps
        sample.add(i / 30, i)
    times = [t for t, _ in sample.items]
    assert 4 <= len(sample) <= 8
    assert times[0] == 0.0 and times[-1] > 6.0
    gaps = np.diff(times)
    assert gaps.min() >= 0.3 - 1e-9


def test_the_running_verdict_scores_only_the_newest_waiting_frame():
    running: RunningPad[str] = RunningPad(PadFramePolicy(max_frames=8, min_gap_s=0.3), TH)
    running.offer(0.0, "a")
    slot, frame = running.take()
    assert frame == "a" and running.take() is None  # one job at a time
    running.offer(0.1, "too soon")  # within the gap: not chosen
    running.offer(0.4, "b")
    running.offer(0.8, "c")  # replaces b, never scored: no backlog
    assert running.take() is None  # a is still being scored
    running.scored(slot, 0.1, 5.0)
    slot, frame = running.take()
    assert frame == "c"
    running.scored(slot, 0.2, 5.0, noise=1.5, detail=2.5)
    result = running.result()
    assert result.scores == (0.1, 0.2) and result.frames_offered == 3 and result.ms == 10.0
    assert result.verdict == PadVerdict.ATTACK and result.face_noise == 1.5  # the noise of the frames that measured one
    assert result.face_detail == 2.5


def test_the_running_verdict_stays_bounded_and_stops_when_the_check_ends():
    running: RunningPad[int] = RunningPad(PadFramePolicy(max_frames=8, min_gap_s=0.3), TH)
    for i in range(600):  # 20 s at 30 fps, every chosen frame scored at once
        running.offer(i / 30, i)
        taken = running.take()
        if taken is not None:
            running.scored(taken[0], 0.9, 1.0)
    result = running.result()
    assert 4 <= result.frames_scored <= 8 and result.frames_offered < 30  # a few a second at first, fewer later
    running.close()
    running.offer(30.0, 1)
    assert not running.waiting and running.take() is None and running.result().frames_offered == result.frames_offered


def test_only_an_attack_on_enough_frames_is_confident():
    few = PadResult.of([0.0] * (CONFIDENT_FRAMES - 1), TH, 1.0, 3)
    enough = PadResult.of([0.0] * CONFIDENT_FRAMES, TH, 1.0, 3)
    doubtful = PadResult.of([0.5] * 6, TH, 1.0, 6)
    assert few.verdict == PadVerdict.ATTACK and not confident_attack(few)
    assert confident_attack(enough) and not confident_attack(doubtful)


def test_spread_sample_keeps_the_gap():
    sample: SpreadSample[str] = SpreadSample(limit=8, gap_s=0.5)
    sample.add(0.0, "a")
    sample.add(0.2, "b")
    sample.add(0.6, "c")
    assert [item for _, item in sample.items] == ["a", "c"]


def test_policy_wants_one_near_frontal_sharp_face():
    policy = PadFramePolicy()
    assert policy.wants(1, 3.0, -12.0, 50.0, 150.0, reference=(0.0, -8.0))
    assert not policy.wants(2, 0.0, 0.0, 50.0, 150.0, reference=None)  # two faces
    assert not policy.wants(1, 25.0, 0.0, 50.0, 150.0, reference=(0.0, 0.0))  # turned
    assert not policy.wants(1, 0.0, 15.0, 50.0, 150.0, reference=(0.0, 0.0))  # looking up
    assert not policy.wants(1, 0.0, 0.0, 5.0, 150.0, reference=None)  # blurred
    assert not policy.wants(1, 0.0, 0.0, 50.0, 30.0, reference=None)  # too small


def _result(passed: bool, reason: Reason | None = None) -> LivenessResult:
    return LivenessResult(passed, reason, None, (ChallengeRecord(Challenge.BLINK),), 0.0, 5.0, ("start",))


def test_an_attack_fails_any_check_and_keeps_the_engine_reason_as_detail():
    attack = PadResult.of([0.01, 0.0, 0.02], TH, 10.0, 3)
    failed = apply_pad(_result(True), attack)
    assert not failed.passed and failed.reason == Reason.PRESENTATION_ATTACK and failed.detail is None
    timed_out = apply_pad(_result(False, Reason.TIMEOUT), attack)
    assert timed_out.reason == Reason.PRESENTATION_ATTACK and timed_out.detail == "timeout"


@pytest.mark.parametrize("scores", [[0.9, 0.95, 0.99], [0.5, 0.6, 0.55], []])
def test_pass_review_or_unscored_leave_the_liveness_verdict_alone(scores):
    result = _result(True)
    assert apply_pad(result, PadResult.of(scores, TH, 1.0, len(scores))) is result


def test_pad_result_as_a_signal():
    signals = check_signals(StreamFacts(), PadResult.of([0.01], TH, 1.0, 1), TH)
    assert signals[0].to_dict() == {"code": "pad_attack", "level": "high", "action": "fail",
                                    "detail": {"score": 0.01, "frames": 1, "thresholds": {"attack": 0.4, "review": 0.7, "flat_below": 0.0, "noisy_above": 0.0, "noisy_review": 0.0,
                                                                                          "detail_below": 0.0}}}
    cued = PadResult.of([0.01], TH, 1.0, 1, deformation=0.02, lumas=[50.0], noises=[3.2], details=[1.1])
    assert {"deformation": 0.02, "face_luma": 50.0, "face_noise": 3.2, "face_detail": 1.1}.items() <= check_signals(StreamFacts(), cued, TH)[0].to_dict()["detail"].items()
    assert check_signals(StreamFacts(), PadResult.of([0.5], TH, 1.0, 1))[0].action == Action.REVIEW
    assert check_signals(StreamFacts(), PadResult.of([], TH, 1.0, 0))[0].code == SignalCode.PAD_UNSCORED
    unavailable = check_signals(StreamFacts(), PadResult.unavailable())[0]
    assert unavailable.code == SignalCode.PAD_UNAVAILABLE and unavailable.level == Level.ELEVATED


@pytest.mark.parametrize("label", ["fake_device_0", "OBS Virtual Camera", "ManyCam Virtual Webcam", "Dummy video device (0x0000) v4l2loopback"])
def test_virtual_camera_labels_are_high_risk(label):
    signal = camera_label_signal(label)
    assert signal is not None and signal.code == SignalCode.VIRTUAL_CAMERA and signal.level == Level.HIGH


def test_device_labels_are_not_a_signal_and_missing_ones_are_a_low_hint():
    assert camera_label_signal("Front Camera") is None
    assert camera_label_signal("FaceTime HD Camera (Built-in)") is None
    assert camera_label_signal("").level == Level.LOW


def test_perfectly_regular_capture_timestamps_look_synthetic():
    synthetic = [i / 30 for i in range(90)]
    assert [s.code for s in timing_signals(synthetic)] == [SignalCode.TIMING_TOO_REGULAR]
    rng = np.random.default_rng(1)
    camera = list(np.cumsum(1 / 30 + rng.normal(0, 0.002, 90)))
    assert timing_signals(camera) == []
    assert timing_signals(synthetic[:10]) == []  # too few frames to say


def test_interarrival_jitter_follows_rfc3550():
    capture = [i / 30 for i in range(200)]
    assert interarrival_jitter(capture, [t + 0.05 for t in capture]) == pytest.approx(0.0)
    bursty = [t + (0.1 if i % 2 else 0.0) for i, t in enumerate(capture)]
    assert interarrival_jitter(capture, bursty) == pytest.approx(0.1, rel=0.01)
    codes = [s.code for s in timing_signals(list(np.cumsum(1 / 30 + np.random.default_rng(2).normal(0, 0.002, 200))), bursty)]
    assert SignalCode.TIMING_IRREGULAR in codes


def test_repeated_frames():
    assert repeated_frames_signal(0, 300) is None
    assert repeated_frames_signal(5, 300) is None
    assert repeated_frames_signal(30, 300).level == Level.ELEVATED
    assert repeated_frames_signal(150, 300).level == Level.HIGH
    assert repeated_frames_signal(10, 10) is None  # too few to say


def test_frame_fingerprint_is_exact():
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 255, (480, 640), dtype=np.uint8)
    assert frame_fingerprint(frame) == frame_fingerprint(frame.copy())
    for row in range(0, 480, FINGERPRINT_ROW_STEP):  # one grain of noise on any sampled row tells them apart
        noisy = frame.copy()
        noisy[row, (row * 7) % 640] ^= 1
        assert frame_fingerprint(frame) != frame_fingerprint(noisy)
    colour = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    noisy = colour.copy()
    noisy[8, 5, 2] ^= 1
    assert frame_fingerprint(colour) != frame_fingerprint(noisy)


def test_resolution_and_rate_changes():
    steady = [(i / 30, 640, 480) for i in range(300)]
    assert format_signals(steady) == []
    resized = steady[:150] + [(t, 320, 240) for t, _, _ in steady[150:]]
    assert [s.code for s in format_signals(resized)] == [SignalCode.RESOLUTION_CHANGED]
    slowed = [(i / 30, 640, 480) for i in range(150)] + [(5 + i / 10, 640, 480) for i in range(50)]
    assert SignalCode.FRAME_RATE_CHANGED in [s.code for s in format_signals(slowed)]


def test_declared_settings_against_delivered():
    declared = {"width": 640, "height": 480, "frame_rate": 30}
    assert declared_signal(declared, 640, 480, 30) is None
    assert declared_signal(declared, 480, 640, 29) is None  # a phone in portrait
    assert declared_signal(declared, 320, 240, 15) is None  # the sender adapted down
    mismatch = declared_signal(declared, 1920, 1080, 60)
    assert mismatch is not None and set(mismatch.detail) == {"size", "frame_rate"}
    assert declared_signal(None, 640, 480, 30) is None


def test_reactions():
    assert reaction_signals([("blink", 0.6), ("turn_left", 1.1)]) == []
    fast = reaction_signals([("blink", 0.05), ("turn_left", 0.9)])
    assert [(s.code, s.level) for s in fast] == [(SignalCode.REACTION_TOO_FAST, Level.ELEVATED)]
    both = reaction_signals([("blink", 0.0), ("turn_left", 0.1), ("smile", 6.0)])
    assert [(s.code, s.level) for s in both] == [(SignalCode.REACTION_TOO_FAST, Level.HIGH), (SignalCode.REACTION_SLOW, Level.LOW)]
    assert reaction_signals([("blink", None)]) == []


def test_check_signals_strongest_first():
    facts = StreamFacts(camera_label="fake_device_0", reactions=[("blink", 0.01)], sizes=[(i / 30, 640, 480) for i in range(90)],
                        declared={"width": 320, "height": 240})
    signals = check_signals(facts, PadResult.of([0.99], TH, 1.0, 1))
    levels = [s.level for s in signals]
    assert levels == sorted(levels, key=[Level.HIGH, Level.ELEVATED, Level.LOW].index)
    assert {s.code for s in signals} >= {SignalCode.VIRTUAL_CAMERA, SignalCode.REACTION_TOO_FAST, SignalCode.SETTINGS_MISMATCH, SignalCode.PAD_PASSED}


def test_the_engine_records_when_the_asked_movement_began():
    from tests.test_engine import run, timeline

    # Neutral (the challenge is asked after 0.2 s of it) until 1.5 s, then a turn building up over 0.5 s.
    ramp = [(1 / 30, {"yaw": 1.0 + 20.0 * i / 15}) for i in range(15)]
    frames = timeline((1.5, {}), *ramp, (0.5, {"yaw": 21.0}))
    result = run(frames, "turn_left")
    record = result.challenges[0]
    assert result.passed
    assert record.asked_at < record.onset_at < record.completed_at
    # Half the 12-degree threshold (6 degrees) is first reached 5 frames up the ramp.
    assert record.onset_at == pytest.approx(1.5 + 5 / 30, abs=1e-3)
    assert record.reaction_s == pytest.approx(record.onset_at - record.asked_at)
    assert record.to_dict()["onset_at_s"] == pytest.approx(record.onset_at, abs=1e-3)


# -- the client that is not a browser (issue 24 item 4) ----------------------------------------------

OFFERS = Path(__file__).parent / "fixtures" / "offers"
CHROME_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"


def offer(name: str) -> str:
    return (OFFERS / f"{name}.sdp").read_text()


def firefox_like(sdp: str) -> str:
    """Chromium's offer under Firefox's o= line (Firefox also offers transport-cc and trickle ICE)."""
    return re.sub(r"o=- \d+ \d+ IN IP4 127\.0\.0\.1", "o=mozilla...THIS_IS_SDPARTA-133.0 4398542143524156215 0 IN IP4 0.0.0.0", sdp)


def test_offers_are_told_apart_by_the_stack_that_wrote_them():
    assert offer_traits(offer("chromium-156")).family == ClientFamily.LIBWEBRTC
    assert offer_traits(offer("aiortc")).family == ClientFamily.AIORTC
    assert offer_traits(firefox_like(offer("chromium-156"))).family == ClientFamily.FIREFOX
    # Chromium's o= line on aiortc's offer is not enough: no transport-wide congestion control, no trickle.
    forged = re.sub(r"o=- (\d+) \d+ IN IP4 0\.0\.0\.0", r"o=- \1 2 IN IP4 127.0.0.1", offer("aiortc"))
    assert offer_traits(forged).family == ClientFamily.UNKNOWN
    assert offer_traits("").family == ClientFamily.UNKNOWN
    assert claimed_family(CHROME_UA) == claimed_family(SAFARI_UA) == ClientFamily.LIBWEBRTC
    assert claimed_family(FIREFOX_UA) == ClientFamily.FIREFOX
    assert claimed_family("Python/3.11 aiohttp/3.10.5") is None and claimed_family("") is None


@pytest.mark.parametrize("sdp, user_agent, expected", [
    ("chromium-156", CHROME_UA, None),
    ("chromium-156", SAFARI_UA, None),
    ("firefox", FIREFOX_UA, None),
    ("aiortc", CHROME_UA, (Level.HIGH, Action.FAIL)),
    ("aiortc", "Python/3.11 aiohttp/3.10.5", (Level.HIGH, Action.FAIL)),
    ("chromium-156", FIREFOX_UA, (Level.ELEVATED, Action.REVIEW)),  # a User-Agent switcher, or a lie
    ("chromium-156", "", (Level.ELEVATED, Action.REVIEW)),
])
def test_client_signal_compares_the_offer_with_the_user_agent(sdp, user_agent, expected):
    text = firefox_like(offer("chromium-156")) if sdp == "firefox" else offer(sdp)
    found = client_signal(text, user_agent)
    assert (None if found is None else (found.level, found.action)) == expected
    if found is not None:
        assert found.code == SignalCode.CLIENT_NOT_BROWSER and "family" in found.detail["offer"]
        assert user_agent[:20] not in str(found.detail) or not user_agent  # a summary, not the header


def test_a_live_offer_is_fingerprinted_and_its_missing_track_settings_noted():
    declared = {"width": 640, "height": 480, "frame_rate": 30}
    browser = check_signals(StreamFacts(offer=offer("chromium-156"), user_agent=CHROME_UA, declared=declared), None)
    assert browser == []
    scripted = {s.code: s for s in check_signals(StreamFacts(offer=offer("aiortc"), user_agent=CHROME_UA), None)}
    assert scripted[SignalCode.CLIENT_NOT_BROWSER].action == Action.FAIL
    assert scripted[SignalCode.SETTINGS_MISMATCH].detail == {"declared": None}
    # A recorded clip has no offer: neither applies.
    assert check_signals(StreamFacts(), None) == []


def _steps_at(rates_and_seconds: list[tuple[float, float]], jitter: float = 0.0, seed: int = 4) -> tuple[list[float], list[float]]:
    """Capture times of a stream sent at each (rate, seconds) in turn from a 20 fps camera, keeping the frames
    a browser keeps at that rate (3 of 5 at 12), and the rate asked for as each arrived."""
    rng = np.random.default_rng(seed)
    times, asked, t = [], [], 0.0
    for rate, seconds in rates_and_seconds:
        for index in range(int(seconds * 20)):
            if rate >= 20 or int(index * rate / 20) > int((index - 1) * rate / 20) or index == 0:
                times.append(t + (rng.normal(0, jitter) if jitter else 0.0))
                asked.append(rate)
            t += 1 / 20
    return times, asked


def test_a_rate_the_server_asked_for_is_no_rate_change_and_does_not_hide_a_synthetic_source():
    # A camera whose page follows the asked rates (the encoder dropping frames, its clock wobbling): no signal.
    camera, asked = _steps_at([(20.0, 2.5), (12.0, 4.0), (20.0, 2.5), (12.0, 4.0)], jitter=0.002)
    assert timing_signals(camera, asked=asked) == []
    sizes = [(t, 360, 480) for t in camera]
    assert SignalCode.FRAME_RATE_CHANGED in [s.code for s in format_signals(sizes)]  # unasked, it would read as one
    assert format_signals(sizes, asked=asked) == []
    # Software that sends exactly the asked rates, each at its own fixed interval, is as regular as before.
    synthetic, asked = [], []
    for rate, start, count in ((20.0, 0.0, 50), (12.0, 2.5, 48), (20.0, 6.5, 50)):
        synthetic += [start + i / rate for i in range(count)]
        asked += [rate] * count
    assert [s.code for s in timing_signals(synthetic, asked=asked)] == [SignalCode.TIMING_TOO_REGULAR]
    # A rate change nobody asked for is still one.
    slowed = [(i / 30, 640, 480) for i in range(150)] + [(5 + i / 10, 640, 480) for i in range(50)]
    assert SignalCode.FRAME_RATE_CHANGED in [s.code for s in format_signals(slowed, asked=[20.0] * len(slowed))]
