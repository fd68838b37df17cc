"""The flatness cue (one homography for a flat face, parallax and deformation for a live one) and the PAD
rule that uses it: pure logic on synthetic landmarks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from realname_tools.pad_crossval import MarginRule, Scored, cross_validate
from server.spoof.flatness import SHAPE_POINTS, FlatnessTracker, check_deformation, frame_deformation
from server.spoof.pad import PadResult, PadThresholds, PadVerdict, expit, logit

FOCAL = 600.0


def head(n: int = len(SHAPE_POINTS), seed: int = 3) -> np.ndarray:
    """Points on a face-like 3D surface (metres): an ellipsoid cap, the nose well in front of the cheeks."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-0.07, 0.07, n), rng.uniform(-0.09, 0.09, n)
    z = -0.06 * (x / 0.07) ** 2 - 0.04 * (y / 0.09) ** 2
    z[np.abs(x) < 0.012] += 0.02  # the nose ridge
    x[SHAPE_POINTS.index(33)], x[SHAPE_POINTS.index(263)] = -0.045, 0.045  # eye corners: the scale
    return np.c_[x, y, z]


def view(points: np.ndarray, yaw_deg: float, depth: float = 0.5, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    a = math.radians(yaw_deg)
    rot = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    p = points @ rot.T + np.array([shift[0], shift[1], depth])
    return np.c_[FOCAL * p[:, 0] / p[:, 2] + 320, FOCAL * p[:, 1] / p[:, 2] + 240]


def test_a_flat_face_moves_by_one_homography_however_it_is_held():
    flat = head()
    flat[:, 2] = 0.0  # a print of the face
    reference = view(flat, 0.0)
    for yaw in (-25.0, -10.0, 15.0, 30.0):
        assert frame_deformation(reference, view(flat, yaw, 0.4, (0.02, -0.01))) < 1e-6


def test_a_head_turning_shows_parallax():
    face = head()
    reference = view(face, 0.0)
    assert frame_deformation(reference, view(face, 2.0)) < frame_deformation(reference, view(face, 15.0))
    assert frame_deformation(reference, view(face, 15.0)) > 0.01


def test_a_blink_deforms_the_face_a_homography_cannot_follow():
    face = head()
    reference = view(face, 0.0)
    blinked = reference.copy()
    lids = [SHAPE_POINTS.index(i) for i in (159, 386)] + list(range(0, len(SHAPE_POINTS), 12))
    blinked[lids, 1] += 8.0  # eyelids and some other points move, the rest stay
    assert frame_deformation(reference, blinked) > 0.01


def svd_deformation(reference: np.ndarray, current: np.ndarray) -> float:
    """The normalised DLT by the SVD of its 2N x 9 system and np.percentile: the textbook form of frame_deformation."""
    def normaliser(p: np.ndarray) -> np.ndarray:
        centre = p.mean(axis=0)
        s = np.sqrt(2) / np.sqrt(((p - centre) ** 2).sum(axis=1)).mean()
        return np.array([[s, 0, -s * centre[0]], [0, s, -s * centre[1]], [0, 0, 1]])

    ts, td = normaliser(reference), normaliser(current)
    a, b = np.c_[reference, np.ones(len(reference))] @ ts.T, np.c_[current, np.ones(len(current))] @ td.T
    zeros = np.zeros((len(a), 3))
    rows = np.vstack([np.hstack([a, zeros, -b[:, :1] * a]), np.hstack([zeros, a, -b[:, 1:2] * a])])
    h = np.linalg.inv(td) @ np.linalg.svd(rows)[2][-1].reshape(3, 3) @ ts
    mapped = np.c_[reference, np.ones(len(reference))] @ h.T
    residual = np.linalg.norm(mapped[:, :2] / mapped[:, 2:3] - current, axis=1)
    return float(np.percentile(residual, 98.0)) / float(np.linalg.norm(current[SHAPE_POINTS.index(33)] - current[SHAPE_POINTS.index(263)]))


def test_the_homography_is_the_least_squares_one_of_the_textbook_dlt():
    rng = np.random.default_rng(5)
    face = head()
    reference = view(face, 0.0) + rng.normal(0.0, 0.5, (len(SHAPE_POINTS), 2))
    for yaw in (-20.0, 3.0, 25.0):
        current = view(face, yaw, 0.45, (0.01, 0.02)) + rng.normal(0.0, 0.5, (len(SHAPE_POINTS), 2))
        assert frame_deformation(reference, current) == pytest.approx(svd_deformation(reference, current), rel=1e-9)


def test_a_face_too_small_measures_nothing():
    points = np.zeros((len(SHAPE_POINTS), 2))
    assert frame_deformation(points, points) is None


def test_the_check_takes_the_second_highest_frame_so_one_glitch_does_not_count():
    assert check_deformation([0.001, 0.5, 0.002, 0.003]) == 0.003
    assert check_deformation([0.2]) is None


def test_the_tracker_keeps_the_first_frame_as_reference_and_its_pace():
    face = head()
    tracker = FlatnessTracker(gap_s=0.1)
    tracker.add(0.0, view(face, 0.0))
    tracker.add(0.05, view(face, 30.0))  # too soon: ignored
    assert tracker.deformation is None
    for i, yaw in enumerate((5.0, 10.0, 15.0), start=1):
        tracker.add(i * 0.1, view(face, yaw))
    assert len(tracker.values) == 3
    assert tracker.deformation == sorted(tracker.values)[-2]



def test_the_tracker_takes_every_frame_of_a_movement_analysed_at_12_fps_of_the_20_sent():
    # Of 20 frames a second sent (stamped from a 30 fps clock), a movement's step analyses every second:
    # 0.1 s apart give or take rounding (0.0999...). A strict 0.1 s took only every second one of those, and
    # a quick turn's turned frames were missed; a frame a little early is on time.
    face = head()
    tracker = FlatnessTracker()
    times = [round(int(i * 1.5) / 30, 9) for i in range(0, 40, 2)]
    assert min(b - a for a, b in zip(times, times[1:], strict=False)) < 0.1
    for t in times:
        tracker.add(t, view(face, 25.0 * t))
    assert len(tracker.values) == len(times) - 1


def test_the_tracker_keeps_eval_pads_frames_every_second_frame_of_a_30_fps_clip_as_before():
    face = head()
    tracker = FlatnessTracker()
    times = [i * 2 / 30 for i in range(30)]  # eval-pad --every 2
    for t in times:
        tracker.add(t, view(face, 10.0 * t))
    assert len(tracker.values) == len(times) // 2 - 1  # every second one: 0.133 s apart

RULE = PadThresholds(attack=0.4, review=0.6, flat_below=0.01, noisy_above=2.0)


def test_a_flat_face_that_the_model_calls_live_goes_to_review():
    assert RULE.decide(0.99, deformation=0.002, noise=0.7) == PadVerdict.REVIEW
    assert RULE.decide(0.99, deformation=0.05, noise=0.7) == PadVerdict.PASS
    assert RULE.decide(0.99, deformation=None, noise=0.7) == PadVerdict.PASS  # not measured: the score decides
    assert RULE.decide(0.1, deformation=0.05, noise=0.7) == PadVerdict.ATTACK  # a deformed face is not a live one


def test_a_noisy_face_is_never_rejected_on_its_score_alone():
    assert RULE.decide(0.1, deformation=0.05, noise=4.0) == PadVerdict.REVIEW
    assert RULE.decide(0.1, deformation=0.05, noise=2.0) == PadVerdict.ATTACK
    assert RULE.decide(0.9, deformation=0.05, noise=4.0) == PadVerdict.PASS


def test_a_noisy_face_is_held_to_its_own_review_threshold():
    rule = PadThresholds(attack=0.4, review=0.8, flat_below=0.01, noisy_above=2.0, noisy_review=0.55)
    assert rule.decide(0.6, deformation=0.05, noise=4.0) == PadVerdict.PASS  # noisy: above its own review threshold
    assert rule.decide(0.6, deformation=0.05, noise=0.7) == PadVerdict.REVIEW  # clean: the same score is not enough
    assert rule.decide(0.5, deformation=0.05, noise=4.0) == PadVerdict.REVIEW
    assert rule.decide(0.3, deformation=0.05, noise=4.0) == PadVerdict.REVIEW  # still never rejected on its score
    assert rule.decide(0.6, deformation=0.002, noise=4.0) == PadVerdict.REVIEW  # a flat noisy face is still held
    assert RULE.decide(0.55, deformation=0.05, noise=4.0) == PadVerdict.REVIEW  # noisy_review 0: the review threshold
    with pytest.raises(ValueError):
        PadThresholds(attack=0.4, review=0.6, noisy_review=1.5)


def test_the_result_carries_the_cues_and_decides_with_them():
    result = PadResult.of([0.99, 0.98, 0.97], RULE, 5.0, 3, deformation=0.001, lumas=[100.0, 110.0, 120.0],
                          noises=[0.5, None, 0.9])
    assert result.verdict == PadVerdict.REVIEW
    assert result.to_dict()["deformation"] == 0.001 and result.to_dict()["face_luma"] == 110.0 and result.to_dict()["face_noise"] == 0.7


def clip(person: str, label: str, score: float, deformation: float, kind: str = "", noise: float = 0.7, recipe: str = "") -> Scored:
    return Scored(f"{person}-{label}-{kind}-{score}", label, kind, person, score, deformation, noise=noise, recipe=recipe)


def test_the_fused_rule_fits_flatness_between_prints_and_genuine_and_scores_on_what_flatness_leaves():
    train = [clip("a", "genuine", 0.95, 0.08), clip("b", "genuine", 0.9, 0.04), clip("c", "attack", 0.99, 0.004, "print"),
             clip("c", "attack", 0.1, 0.09, "screen_replay"), clip("d", "attack", 0.01, 0.001, "print")]
    fitted = MarginRule(flatness=True, noisy_above=2.0).fit(train)
    assert fitted.flat_below == round(math.sqrt(0.004 * 0.04), 4)
    assert fitted.review < 0.9 and fitted.attack > 0.1  # the close print at 0.99 is held by flatness, not by the score
    assert fitted.decide(0.99, 0.004, 0.7) == PadVerdict.REVIEW


def test_noisy_genuine_clips_do_not_place_the_score_thresholds():
    train = [clip("a", "genuine", 0.95, 0.08), clip("b", "genuine", 0.45, 0.05, noise=4.0), clip("c", "attack", 0.5, 0.09, "screen_replay")]
    fitted = MarginRule(flatness=True, noisy_above=2.0).fit(train)
    assert fitted.review > 0.5  # the replay at 0.5 is not accepted
    assert fitted.decide(0.45, 0.05, 4.0) == PadVerdict.REVIEW  # the customer in a dim room is not rejected


def test_a_noisy_face_s_review_threshold_keeps_every_known_attack_out():
    clean_replay = clip("c", "attack", 0.5, 0.09, "screen_replay")
    train = [clip("a", "genuine", 0.95, 0.08), clip("b", "genuine", 0.7, 0.05, noise=4.0), clean_replay]
    fitted = MarginRule(flatness=True, noisy_above=2.0, noisy_review=True, noisy_floor=False).fit(train)
    assert 0.5 < fitted.noisy_review < 0.7 and fitted.noisy_review == round(expit((logit(0.5) + logit(0.7)) / 2), 4)
    assert fitted.decide(0.7, 0.05, 4.0) == PadVerdict.PASS and fitted.decide(0.5, 0.09, 4.0) == PadVerdict.REVIEW
    # a noisy genuine clip below a known attack: just above the attack, never below it
    overlap = MarginRule(flatness=True, noisy_above=2.0, noisy_review=True, noisy_floor=False).fit(train + [clip("d", "genuine", 0.3, 0.05, noise=4.0)])
    assert overlap.noisy_review == round(expit(logit(0.5) + 0.05), 4)
    # shipped: a noisy face never passes more easily than a clean one
    assert MarginRule(flatness=True, noisy_above=2.0, noisy_review=True).fit(train).noisy_review == fitted.review
    # a dim-room attack that scores higher than any other: a stricter threshold for noisy faces, the clean ones unmoved
    noisy_replay = clip("e", "attack", 0.9, 0.09, "screen_replay", noise=4.0, recipe="monitor_replay_dim")
    stricter = MarginRule(flatness=True, noisy_above=2.0, noisy_review=True).fit(train + [clip("f", "genuine", 0.99, 0.05, noise=4.0), noisy_replay])
    assert stricter.review == fitted.review and stricter.noisy_review > 0.9
    assert stricter.decide(0.95, 0.05, 0.7) == PadVerdict.PASS and stricter.decide(0.9, 0.09, 4.0) == PadVerdict.REVIEW
    assert MarginRule(flatness=True, noisy_above=2.0, noisy_never_passes=True).fit(train).decide(0.99, 0.05, 4.0) == PadVerdict.REVIEW
    assert MarginRule(flatness=True, noisy_above=2.0).fit(train).noisy_review == 0.0


def test_an_attack_filmed_in_ordinary_light_places_the_clean_thresholds_whatever_its_noise():
    """A generated screen's moire measures as noise; a real screen replay in ordinary light measures clean. So
    every attack filmed in ordinary light holds the clean thresholds, and only the dim room's do not."""
    train = [clip("a", "genuine", 0.95, 0.08), clip("b", "genuine", 0.9, 0.06), clip("c", "attack", 0.1, 0.09, "print"),
             clip("d", "attack", 0.6, 0.09, "screen_replay", noise=4.0, recipe="monitor_replay")]
    assert MarginRule(flatness=True, noisy_above=2.0, noisy_review=True).fit(train).review > 0.6
    assert MarginRule(flatness=True, noisy_above=2.0, noisy_review=True, clean_attacks="noise").fit(train).review < 0.6
    in_the_dark = train[:3] + [clip("d", "attack", 0.6, 0.09, "screen_replay", noise=4.0, recipe="monitor_replay_dim")]
    assert MarginRule(flatness=True, noisy_above=2.0, noisy_review=True).fit(in_the_dark).review < 0.6


def test_cross_validation_fits_without_the_scored_person():
    items = [clip(p, "genuine", 0.9, 0.05) for p in "abc"] + [clip(p, "attack", 0.05, 0.001, "print") for p in "abc"]
    for fold in cross_validate(items, MarginRule(flatness=True, noisy_above=2.0).fit):
        assert fold.person not in fold.trained_on
        assert all(v != PadVerdict.PASS for s, v in fold.verdicts if s.label == "attack")


def test_a_fold_whose_genuine_clips_are_all_noisy_still_fits():
    train = [clip("a", "genuine", 0.9, 0.05, noise=4.0), clip("b", "attack", 0.05, 0.06, "screen_replay")]
    fitted = MarginRule(flatness=True, noisy_above=2.0).fit(train)
    assert fitted.attack < 0.9 and fitted.review <= 0.9


def test_a_check_that_passed_a_deforming_challenge_hands_no_deformation_to_the_rule():
    from server.liveness.challenges import Challenge
    from server.liveness.engine import ChallengeRecord
    from server.spoof.flatness import deformation_for_rule

    turned = (ChallengeRecord(Challenge.TURN_LEFT, passed=True),)
    assert deformation_for_rule(0.01, turned) == 0.01  # a tilted print can mimic a turn: flatness judges
    assert deformation_for_rule(0.01, turned + (ChallengeRecord(Challenge.BLINK, passed=True),)) is None
    assert deformation_for_rule(0.01, (ChallengeRecord(Challenge.SMILE, passed=False),)) == 0.01


def test_a_face_with_less_detail_than_every_known_genuine_one_goes_to_review():
    rule = PadThresholds(attack=0.4, review=0.6, flat_below=0.01, noisy_above=2.0, detail_below=1.25)
    assert rule.decide(0.99, deformation=0.05, noise=4.0, detail=1.1) == PadVerdict.REVIEW  # a recaptured print, brightened
    assert rule.decide(0.99, deformation=0.05, noise=4.0, detail=1.4) == PadVerdict.PASS
    assert rule.decide(0.99, deformation=0.05, noise=4.0, detail=None) == PadVerdict.PASS  # not measured: the other cues decide
    assert rule.decide(0.1, deformation=0.05, noise=0.7, detail=1.1) == PadVerdict.ATTACK  # it only ever holds a pass
    assert RULE.decide(0.99, deformation=0.05, noise=0.7, detail=0.01) == PadVerdict.PASS  # off by default
    with pytest.raises(ValueError):
        PadThresholds(detail_below=-1.0)
    result = PadResult.of([0.99, 0.98], rule, 5.0, 2, deformation=0.05, noises=[4.0, 4.0], details=[1.0, None])
    assert result.verdict == PadVerdict.REVIEW and result.to_dict()["face_detail"] == 1.0


def test_detail_below_sits_just_below_the_least_detailed_genuine_clip_whatever_the_attacks():
    def detailed(person, label, score, detail, kind=""):
        return Scored(f"{person}-{label}-{detail}", label, kind, person, score, 0.05, noise=0.7, detail=detail)

    train = [detailed("a", "genuine", 0.95, 1.4), detailed("b", "genuine", 0.9, 3.0), detailed("c", "attack", 0.1, 1.0, "print"),
             detailed("c", "attack", 0.1, 9.0, "screen_replay")]
    fitted = MarginRule(detail=True).fit(train)
    assert fitted.detail_below == round(1.4 * math.exp(-0.05), 3)
    assert MarginRule(detail=True).fit(train + [detailed("d", "attack", 0.1, 1.39, "print")]).detail_below == fitted.detail_below
    assert MarginRule().fit(train).detail_below == 0.0
    assert fitted.decide(0.99, 0.05, 0.7, 1.4) == PadVerdict.PASS  # no known genuine clip is held
