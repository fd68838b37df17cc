"""Cuts in a stream (spoof/continuity.py) and the `stream_discontinuity` signal, on synthetic frames and
on the steps recorded from streams Chromium sent (tests/fixtures/signals/continuity_chromium_steps.json);
the calibration on the shared genuine clips and generated splices is `python -m realname_tools.splices
calibrate` (docs/anti-spoofing.md), and a splice judged end to end is in tests/test_offline_judgement.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from server.spoof.continuity import (
    FADE_EVEN_RESIDUAL,
    FADE_RESIDUAL,
    FINE_SIZE,
    THUMB_SIZE,
    ContinuityTracker,
    CutLimits,
    Step,
    blend_residual,
    cuts,
    luma_thumbnail,
    luma_thumbnails,
    sharpness,
    thumbnail,
    thumbnails,
)
from server.spoof.signals import Action, Level, SignalCode, StreamFacts, check_signals, discontinuity_signal

FPS = 15.0


def scene(seed: int, size=(480, 640)) -> np.ndarray:
    """A smooth random picture (a room, a face): low-frequency shapes, RGB uint8."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(small, size[::-1], interpolation=cv2.INTER_CUBIC)


def stream(pieces: list[tuple[int, int]], shake_px: int = 0, seed: int = 0) -> ContinuityTracker:
    """Frames of each (scene, count) piece in turn, drifting slowly, with sensor noise and camera shake."""
    rng = np.random.default_rng(seed)
    tracker = ContinuityTracker()
    index = 0
    for scene_seed, count in pieces:
        base = scene(scene_seed).astype(np.int16)
        for i in range(count):
            frame = np.roll(base, (i // 3, i // 2), axis=(0, 1))  # a slow movement
            if shake_px:
                frame = np.roll(frame, tuple(rng.integers(-shake_px, shake_px + 1, 2)), axis=(0, 1))
            frame = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
            tracker.add(index / FPS, thumbnail(frame.mean(axis=2).astype(np.uint8)))
            index += 1
    return tracker


SMALL = (240, 320)


def fed(frames: list[np.ndarray], fine: bool = True, seed: int = 0) -> ContinuityTracker:
    """RGB frames with sensor noise, each as its thumbnail and (with `fine`) its finer one."""
    rng = np.random.default_rng(seed)
    tracker = ContinuityTracker()
    for index, frame in enumerate(frames):
        grey = np.clip(frame.mean(axis=2) + rng.normal(0, 3, frame.shape[:2]), 0, 255).astype(np.uint8)
        small, finer = thumbnails(grey)
        tracker.add(index / FPS, small, None, finer if fine else None)
    return tracker


def drifting(picture: np.ndarray, count: int, start: int = 0) -> list[np.ndarray]:
    """The picture moving slowly down and right, as a camera sees it (the scene goes on past the edges:
    mirrored, not wrapped round, which would draw a seam across the frame that moves)."""
    h, w = picture.shape[:2]
    room = np.pad(picture, ((h, 0), (w, 0), (0, 0)), mode="reflect")
    return [room[h - (start + i) // 3 : 2 * h - (start + i) // 3, w - (start + i) // 2 : 2 * w - (start + i) // 2] for i in range(count)]


def cross_fade(last: np.ndarray, first: np.ndarray, count: int) -> list[np.ndarray]:
    return [((1 - j / (count + 1)) * last + j / (count + 1) * first.astype(np.float32)).astype(np.uint8) for j in range(1, count + 1)]


def test_a_cross_faded_cut_is_found_once_and_a_plain_cut_rule_alone_misses_it():
    """Two pieces of one shot (a region of it changed: the person elsewhere), the cut cross-faded over
    2-6 frames: each step of the fade is a fraction of the cut, none stands out; the run of steps whose
    inner frames are blends of its ends is one jump, and a cut."""
    one, other = scene(1, SMALL), scene(1, SMALL).copy()
    other[60:180, 80:200] = scene(2, SMALL)[60:180, 80:200]
    for count in (2, 3, 4, 6):
        frames = drifting(one, 30) + cross_fade(drifting(one, 30)[-1], drifting(other, 1, 30)[0], count) + drifting(other, 30, 30)
        found = cuts(fed(frames).steps)
        assert len(found) == 1 and 30 <= round(found[0] * FPS) <= 30 + count, count
        assert cuts(fed(frames, fine=False).steps) == [], count  # without the finer pictures: no fade looked for


def test_a_moving_pattern_and_a_still_one_are_no_cross_fade():
    """A pan across a detailed scene, up to a tenth of the frame a frame: its frames are the scene moved,
    not blends; a still scene: its ends differ by noise only."""
    wide = scene(3, (240, 1000))
    detailed = cv2_resize(np.random.default_rng(3).integers(0, 255, (6, 24, 3), dtype=np.uint8), (1000, 240))
    for picture in (wide, detailed):
        for speed in (2, 5, 10, 15):
            tracker = fed([picture[:, 100 + i * speed : 420 + i * speed] for i in range(40)])
            assert not any(s.fade for s in tracker.steps) and cuts(tracker.steps) == [], speed
    tracker = fed([scene(4, SMALL)] * 40)
    assert not any(s.fade for s in tracker.steps) and cuts(tracker.steps) == []


def cv2_resize(small: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(small, size, interpolation=cv2.INTER_CUBIC)


def through_a_codec(weights: list[float], noise: float, seed: int = 0) -> list[np.ndarray]:
    """Fine pictures (FINE_SIZE) of a still shot cut to another (a fifth of the way to another picture in a
    part of it: each step of the fade under the plain rule's limits) through blends of the given weights,
    each blend off by blocky noise (4x4 blocks of the fine picture, about a VP8 macroblock at the page's
    size) of `noise` times the cut's size, as a browser's encoder leaves a fade; the shots with a little
    sensor noise."""
    import cv2

    rng = np.random.default_rng(seed)
    one = cv2.resize(scene(7, SMALL).mean(axis=2), FINE_SIZE, interpolation=cv2.INTER_AREA)
    other = one.copy()
    other[12:40, 16:48] += 0.2 * (cv2.resize(scene(8, SMALL).mean(axis=2), FINE_SIZE, interpolation=cv2.INTER_AREA)[12:40, 16:48] - one[12:40, 16:48])
    difference = other - one
    still = [one + rng.normal(0, 0.3, one.shape) for _ in range(30)]
    blends = []
    for w in weights:
        blocky = np.kron(rng.normal(0, 1, (FINE_SIZE[1] // 4, FINE_SIZE[0] // 4)), np.ones((4, 4)))
        blends.append(one + w * difference + blocky * noise * np.linalg.norm(difference) / np.linalg.norm(blocky))
    return still + blends + [other + rng.normal(0, 0.3, one.shape) for _ in range(30)]


def fed_fine(pictures: list[np.ndarray], **limits) -> ContinuityTracker:
    import cv2

    tracker = ContinuityTracker(**limits)
    for index, fine in enumerate(pictures):
        tracker.add(index / FPS, cv2.resize(fine.astype(np.float32), THUMB_SIZE, interpolation=cv2.INTER_AREA), None, fine.astype(np.float32))
    return tracker


def test_a_cross_fade_through_a_browsers_codec_is_found_when_its_blend_climbs_evenly():
    """A still shot cut to another through a 3-frame fade, each blend off by an encoder's blocky noise:
    its blend residual is over FADE_RESIDUAL (the clean fades' limit) but under FADE_EVEN_RESIDUAL, and
    its weights climb in equal steps between calm stretches: a cut. Without the even runs' limit, none;
    nor when the same noisy blends go slowly, then at once (a movement's profile, not a fade's)."""
    pictures = through_a_codec([0.25, 0.5, 0.75], noise=0.1)
    residual = blend_residual(np.stack([p.ravel() for p in pictures[29:34]]))
    assert FADE_RESIDUAL < residual < FADE_EVEN_RESIDUAL, residual
    found = cuts(fed_fine(pictures).steps)
    assert len(found) == 1 and 30 <= round(found[0] * FPS) <= 33, found
    # Without the even runs' limit, none (the sharpness, which the blocky noise changes at once, left out).
    assert cuts(fed_fine(pictures, even_residual=-1.0).steps, CutLimits(jolt=float("inf"))) == []
    uneven = through_a_codec([0.1, 0.2, 0.8], noise=0.1)
    assert blend_residual(np.stack([p.ravel() for p in uneven[29:34]])) < FADE_EVEN_RESIDUAL
    # Its one large step (0.2 to 0.8 of the cut) may be a cut of its own out of so still a shot; the even runs add none.
    assert cuts(fed_fine(uneven).steps) == cuts(fed_fine(uneven, even_residual=-1.0).steps)


def test_the_blend_residual_of_a_fade_a_movement_and_a_still_scene():
    rng = np.random.default_rng(5)
    first, last = scene(5).mean(axis=2), scene(6).mean(axis=2)
    fade = [(1 - w) * first + w * last + rng.normal(0, 1, first.shape) for w in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert blend_residual(np.stack([f.ravel() for f in fade])) < FADE_RESIDUAL / 3
    moved = [np.roll(first, 12 * i, axis=1) for i in range(5)]  # a movement: not blends of its ends
    assert blend_residual(np.stack([m.ravel() for m in moved])) > 2 * FADE_RESIDUAL
    still = [first + rng.normal(0, 1, first.shape) for _ in range(5)]  # weights anywhere: no order
    assert blend_residual(np.stack([s.ravel() for s in still])) > 3 * FADE_RESIDUAL
    backwards = [fade[0], fade[3], fade[2], fade[1], fade[4]]  # blends, not in order
    assert blend_residual(np.stack([b.ravel() for b in backwards])) == float("inf")


def test_a_continuous_stream_has_no_cut_even_with_a_shaking_camera():
    assert cuts(stream([(1, 60)]).steps) == []
    assert cuts(stream([(1, 60)], shake_px=20).steps) == []


def test_each_cut_between_pieces_of_footage_is_found_where_it_is():
    found = cuts(stream([(1, 30), (2, 20), (3, 20)]).steps)
    assert [round(t * FPS) for t in found] == [30, 50]


def test_a_jump_after_a_stall_is_not_judged():
    steps = [Step(i / FPS, 1 / FPS, 1.0) for i in range(1, 30)]
    steps[15] = Step(steps[15].t, 1.0, 40.0)  # a second without frames, then the person elsewhere
    assert cuts(steps) == []
    steps[15] = Step(steps[15].t, 1 / FPS, 40.0)
    assert cuts(steps) == [steps[15].t]


def test_a_jump_across_dropped_frames_is_judged_per_interval_it_spans():
    steps = [Step(i / FPS, 1 / FPS, 1.0) for i in range(1, 30)]
    steps[15] = Step(steps[15].t, 3 / FPS, 40.0)  # two frames dropped: 13 grey levels an interval, still a cut
    assert cuts(steps) == [steps[15].t]
    steps[15] = Step(steps[15].t, 3 / FPS, 9.0)  # 3 an interval: a movement the dropped frames would have shown
    assert cuts(steps) == []


def test_frames_delivered_in_a_burst_do_not_drown_a_cut_beside_them():
    steps = [Step(i / FPS, 1 / FPS, 1.0) for i in range(1, 30)]
    steps[15] = Step(steps[15].t, 1 / FPS, 40.0)
    for i in (12, 13, 17, 18):  # captured an interval apart, arrived 2 ms apart on a busy machine
        steps[i] = Step(steps[i].t, 0.002, 1.0)
    assert cuts(steps) == [steps[15].t]


def filmed(captures: list[float], cut_at: float | None = None, seed: int = 0) -> list[Step]:
    """A camera's frames captured at `captures` (seconds; a time given twice: the same picture sent again,
    with the codec's noise, as a camera padding a lower rate sends it), of a scene drifting slowly, where
    the person blinks at 0.9 s and turns from 1.5 s to 1.9 s and back from 3.0 s, with sensor noise; from
    `cut_at` on another scene (a splice). Fed as the live path feeds them: arrival clock, capture time."""
    rng = np.random.default_rng(seed)
    tracker = ContinuityTracker()
    bases = {k: scene(k, SMALL).astype(np.float32) for k in (1, 2)}
    previous: tuple[float, np.ndarray] | None = None
    for k, t in enumerate(captures):
        if previous is not None and previous[0] == t:
            grey = previous[1] + rng.normal(0, 1, previous[1].shape)
        else:
            turn = float(np.clip((t - 1.5) / 0.4, 0, 1) - np.clip((t - 3.0) / 0.4, 0, 1))
            moved = 8 * t + 40 * turn * turn * (3 - 2 * turn)  # pixels
            picture = np.roll(bases[2 if cut_at is not None and t >= cut_at else 1], (int(moved / 2), int(moved)), axis=(0, 1))
            grey = picture.mean(axis=2) + rng.normal(0, 3, picture.shape[:2])
            grey[100:140, 120:200] -= 40 * max(0.0, 1 - abs(t - 0.9) / 0.12)  # the eyes darken and clear
        tracker.add(t + 0.08 + k / 1000, thumbnail(np.clip(grey, 0, 255).astype(np.uint8)), t)
        previous = (t, grey)
    return tracker.steps


def cadence(name: str, seconds: float = 4.0) -> list[float]:
    """Capture times of a camera: `30->20` keeps 2 frames of 3 of a 30 fps camera (the page asks 20: 33 and
    67 ms intervals in turn), `15` a 15 fps camera, `15->30` and `10->25` a lower rate padded with repeated
    frames (each picture sent again at the padded rate's ticks until the next one)."""
    if name == "30->20":
        return [k / 30 for k in range(round(seconds * 30)) if k % 3 != 2]
    if name == "15":
        return [k / 15 for k in range(round(seconds * 15))]
    low, high = (int(v) for v in name.split("->"))
    return [int(k * low / high) / low for k in range(round(seconds * high))]


CADENCES = ("30->20", "15", "15->30", "10->25")


def test_uneven_intervals_a_slower_camera_and_repeated_frames_are_no_cut():
    for name in CADENCES:
        assert cuts(filmed(cadence(name))) == [], name


def test_a_cut_is_found_in_uneven_intervals_a_slower_camera_and_repeated_frames():
    """Before repeated frames were joined to the next distinct one, a camera padding 15 to 30 or 10 to 25
    hid this cut: each step after a repeat was halved, the steps beside it were not."""
    for name in CADENCES:
        found = cuts(filmed(cadence(name), cut_at=2.0))
        assert len(found) == 1 and 2.0 <= found[0] - 0.08 < 2.15, (name, found)


def test_the_step_interval_is_the_shorter_of_the_arrival_and_the_capture_clocks():
    flat = np.full((24, 32), 100, np.float32)
    tracker = ContinuityTracker()
    tracker.add(0.0, flat, capture_t=10.0)
    tracker.add(0.05, flat, capture_t=11.0)  # a capture clock that claims a second passed: not a gap
    tracker.add(1.05, flat, capture_t=11.05)  # frames that arrive late in a burst: not a gap either
    assert [round(s.dt, 3) for s in tracker.steps] == [0.05, 0.05]


def test_the_thumbnail_of_a_video_frame_is_read_from_its_luma_plane():
    import av

    rgb = scene(4)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    grey = thumbnail(frame.reformat(format="gray").to_ndarray())  # full range, as the limits are calibrated
    assert np.abs(luma_thumbnail(frame) - grey).max() <= 2.5  # the video-range luma plane, stretched (rounding)
    assert np.abs(luma_thumbnail(frame.reformat(format="rgb24")) - grey).max() <= 2.5  # no luma plane: converted
    fine = thumbnails(frame.reformat(format="gray").to_ndarray())[1]
    assert np.abs(luma_thumbnails(frame)[1] - fine).max() <= 2.5  # the finer picture too (cross-fades)


RECORDED = json.loads((Path(__file__).parent / "fixtures" / "signals" / "continuity_chromium_steps.json").read_text())


def recorded(name: str) -> tuple[list[Step], list[tuple[float, float]]]:
    case = RECORDED[name]
    return [Step(*s) for s in case["steps"]], [tuple(span) for span in case["spans"]]


def windows(name: str) -> list[tuple[float, float]]:
    return [tuple(window) for window in RECORDED[name]["windows"]]


def test_genuine_streams_as_chromium_sent_them_have_no_cut():
    """Every frame received, at 20 fps in VP8: the head-turn selfie (whose file repeats frames) and the
    face-tracked hand-held lp_d12 (every frame jumps)."""
    for name in ("genuine_headturn_selfie", "genuine_lp_d12"):
        steps, spans = recorded(name)
        assert cuts(steps) == [], name
        assert discontinuity_signal(steps, spans) is None


def test_a_splice_as_chromium_sent_it_is_caught():
    steps, spans = recorded("splice_headturn_four_pieces")
    signal = discontinuity_signal(steps, spans)
    assert signal is not None and signal.action in (Action.REVIEW, Action.FAIL) and signal.detail["during_challenges"] >= 1


def padded(steps: list[Step], every: int) -> list[Step]:
    """Steps as a camera would make them that sends one frame in `every` twice (at half the interval; the
    repeat changes by the codec's noise only)."""
    out: list[Step] = []
    for k, s in enumerate(steps):
        out += [Step(s.t - s.dt / 2, s.dt / 2, s.change, s.fade, s.fade_steps), Step(s.t, s.dt / 2, 0.02)] if k % every == 0 else [s]
    return out


def test_genuine_streams_as_chromium_sent_them_padded_with_repeated_frames_have_no_cut():
    """Every frame repeated (15 a second padded to 30), or one in 2 or 3: the repeats pulled the stream's
    median step down to the codec's noise and every movement stood out of it (145 cuts in lp_d12's)."""
    for name in ("genuine_headturn_selfie", "genuine_lp_d12", "genuine_lp_d13"):
        steps, _ = recorded(name)
        for every in (1, 2, 3):
            assert cuts(padded(steps, every)) == [], (name, every)
    steps, _ = recorded("splice_headturn_four_pieces")
    assert len(cuts(padded(steps, 1))) == len(cuts(steps)) == 2


def test_a_cut_into_a_piece_that_begins_with_its_movement_is_found_and_a_movement_is_not():
    calm = [1.0, 0.8, 1.1, 0.9, 1.0, 1.2, 0.9, 1.0, 1.1, 0.8]
    turn = [1.5, 3.0, 6.0, 9.0, 10.0, 9.0, 6.0, 3.0, 1.5]  # a fast turn: its steps grow and shrink
    moving_after_cut = calm + [30.0, 8.0, 9.0, 10.0, 6.0, 3.0, 1.5] + calm  # the spliced piece turns at once
    assert cuts([Step((i + 1) / FPS, 1 / FPS, c) for i, c in enumerate(calm + turn + calm)]) == []
    steps = [Step((i + 1) / FPS, 1 / FPS, c) for i, c in enumerate(moving_after_cut)]
    assert cuts(steps) == [steps[10].t]


def cut_steps(at: list[int]) -> list[Step]:
    return [Step(i / FPS, 1 / FPS, 30.0 if i in at else 1.0) for i in range(1, 90)]


def test_cuts_during_the_challenges_ask_for_review_then_fail_the_check():
    spans = [(2.0, 3.0), (3.5, 5.0)]
    assert discontinuity_signal(cut_steps([]), spans) is None
    one = discontinuity_signal(cut_steps([38]), spans)  # 2.53 s
    assert (one.code, one.level, one.action) == (SignalCode.STREAM_DISCONTINUITY, Level.ELEVATED, Action.REVIEW)
    two = discontinuity_signal(cut_steps([38, 60]), spans)  # 2.53 s and 4 s
    assert (two.level, two.action, two.detail["during_challenges"]) == (Level.HIGH, Action.FAIL, 2)
    before = discontinuity_signal(cut_steps([5]), spans)  # before the first prompt: only noted
    assert (before.level, before.action) == (Level.LOW, Action.NONE)


def quiet(cut_at: int, cut: float, around: float | None = None, other: float | None = None) -> list[Step]:
    """A still, evenly lit shot: steps of 0.10-0.14 grey levels (median 0.12), one of `cut` at `cut_at`;
    `around`: the 3 steps before it (its calmer side less calm: the cut less isolated), `other`: the 3
    after it (as `around` unless given)."""
    noise = [0.12, 0.10, 0.14, 0.11, 0.13]
    other = around if other is None else other

    def change(i: int) -> float:
        if i == cut_at:
            return cut
        if around and cut_at - 3 <= i < cut_at:
            return around
        if other and cut_at < i <= cut_at + 3:
            return other
        return noise[i % 5]

    return [Step(i / FPS, 1 / FPS, change(i)) for i in range(1, 90)]


def test_a_small_cut_counts_in_a_prompts_reaction_window_only():
    """Two pieces of one still shot cut right after a prompt: a step under the floor of 2 grey levels
    (a quiet genuine stream reaches 1.7), 9.6 times the stream's median, 6.6 times the steps before it
    and 2.3 times those after. In the window from the prompt to the movement's onset it is a cut; elsewhere it is not."""
    steps = quiet(40, 1.15, around=0.175, other=0.5)  # 2.67 s
    assert cuts(steps) == []
    assert cuts(steps, windows=[(2.5, 3.0)]) == [steps[39].t]
    assert cuts(steps, windows=[(3.0, 4.0)]) == []
    one = discontinuity_signal(steps, [(2.5, 5.0)], windows=[(2.5, 3.0)])
    assert (one.level, one.action, one.detail["during_challenges"]) == (Level.ELEVATED, Action.REVIEW, 1)


def test_a_small_cut_standing_further_out_of_a_still_shot_counts_anywhere():
    """A still person in a still shot cut between two moments: 1.5 grey levels, 12.5 times the stream's
    median step, over the 10.8 times (1.3 x the highest step under the floor of the genuine streams,
    offline and through Chromium) at which a step under the floor is a cut outside the reaction windows."""
    steps = quiet(40, 1.5)
    assert cuts(steps) == [steps[39].t]
    assert cuts(quiet(40, 1.2, around=0.19, other=0.5)) == []  # 10 times, 6.3 and 2.4 its sides: only in a reaction window
    assert cuts(quiet(40, 0.35)) == []  # under 0.4 grey levels: never


def test_a_small_cut_just_under_a_limit_but_far_out_of_both_sides_counts():
    """A cut out of a still shot, 10 times the stream's median step (under the 10.8 times a step under the
    floor needs alone) and 10 times the steps on each side (over the 6 of `isolation` by far): the
    product, 1000, is over the 258 of `evidence` (1.3 x the genuine streams' highest: the phone replay
    through VP8, 3.0 x 8.2 x 8.1). Each ratio alone as before; a step that stands out of one side only
    (genuine `lp_d13` through Chromium: 8.3 times, 6.2 and 2.3 its sides) is no cut."""
    steps = quiet(40, 1.2)
    assert cuts(steps) == [steps[39].t]
    assert cuts(steps, CutLimits(evidence=float("inf"))) == []  # the limits one by one: no cut
    assert cuts(quiet(40, 1.0)) == [steps[39].t]  # 8.3 x 8.3 x 8.3: 579
    assert cuts(quiet(40, 1.0, around=0.16, other=0.43)) == []  # 8.3 x 6.25 x 2.3: 121, as genuine lp_d13's step
    assert cuts(quiet(40, 1.3, around=0.3)) == []  # 10.8 times but 4.3 its calmer side: not isolated
    assert cuts(quiet(40, 0.39)) == []  # under 0.4 grey levels: never


def test_in_the_window_a_small_step_must_stand_out_more_than_a_cut_elsewhere():
    steps = quiet(40, 1.0, around=0.16, other=0.43)  # 8.3 times the median, 6.25 and 2.3 its sides: genuine lp_d13's through Chromium
    assert cuts(steps, windows=[(2.5, 3.0)]) == []
    assert cuts(quiet(40, 2.1), windows=[(2.5, 3.0)]) == cuts(quiet(40, 2.1)) != []  # over the floor: as anywhere
    steps = quiet(40, 0.3)  # under the window's floor of 0.4
    assert cuts(steps, windows=[(0.0, 6.0)]) == []


def test_a_genuine_stream_as_chromium_sent_it_has_no_cut_in_its_reaction_windows():
    """lp_d13 through Chromium's fake camera (VP8): a step of 1.35 grey levels, 7.0 times the stream's
    median and 6.0 times its calmer side, in the blink's window (0.2 s from prompt to onset): with the
    1.7 of another run (7.1 times), the highest of the genuine streams, which the window's limit is 1.3
    times."""
    for name in ("genuine_lp_d13", "genuine_lp_d13_second_run"):  # the second: its blink 6.6 s after the prompt
        steps, spans = recorded(name)
        assert cuts(steps, windows=windows(name)) == [], name
        assert discontinuity_signal(steps, spans, windows=windows(name)) is None, name


def test_a_cut_under_the_floor_as_chromium_sent_it_is_found_in_its_reaction_window():
    """The green-screen clip lp_d0 cut once (0.45 s into 1.0 s) as a smile's footage: 1.75 grey levels
    through Chromium, under the floor; approved before the reaction window was judged. It stands out of
    its still shot far enough to be a cut outside the window too."""
    steps, spans = recorded("splice_lp_d0_one_cut")
    for found in (windows("splice_lp_d0_one_cut"), []):
        signal = discontinuity_signal(steps, spans, windows=found)
        assert signal is not None and signal.action == Action.REVIEW and signal.detail["during_challenges"] == 1


def test_reaction_windows_run_from_each_prompt_to_its_movements_onset():
    from server.liveness.challenges import Challenge
    from server.liveness.engine import ChallengeRecord, LivenessResult

    records = (
        ChallengeRecord(Challenge.SMILE, asked_at=1.0, completed_at=2.0, passed=True, onset_at=1.4),
        ChallengeRecord(Challenge.BLINK, asked_at=2.5),  # never began: to the check's end
        ChallengeRecord(Challenge.TURN_LEFT),  # never asked
    )
    result = LivenessResult(False, None, None, records, 0.0, 9.0, ())
    assert result.challenge_spans(to_onset=True) == [(1.0, 1.4), (2.5, 9.0)]
    assert result.challenge_spans() == [(1.0, 2.0), (2.5, 9.0)]


def test_check_signals_reports_it_from_the_stream_facts():
    facts = StreamFacts(continuity=cut_steps([38, 60]), challenge_spans=[(2.0, 3.0), (3.5, 5.0)])
    assert SignalCode.STREAM_DISCONTINUITY in [s.code for s in check_signals(facts, None)]
    small = StreamFacts(continuity=quiet(40, 1.15, around=0.175, other=0.5), challenge_spans=[(2.5, 5.0)])
    assert SignalCode.STREAM_DISCONTINUITY not in [s.code for s in check_signals(small, None)]
    small = StreamFacts(continuity=quiet(40, 1.15, around=0.175, other=0.5), challenge_spans=[(2.5, 5.0)], reaction_windows=[(2.5, 3.0)])
    assert SignalCode.STREAM_DISCONTINUITY in [s.code for s in check_signals(small, None)]


def test_a_splice_of_real_footage_cross_faded_at_each_cut_is_found(tmp_path):
    """The head-turn selfie cut into three pieces, each cut cross-faded over 4 frames into a piece that
    goes on moving (realname_tools/splices.py, made here, never kept): without the fades' cue, no cut."""
    from realname_tools.puppets import write_clip
    from realname_tools.splices import FPS as SPLICE_FPS
    from realname_tools.splices import pictures_of, splice, steps_from
    from tests.support.media import video

    source = video("headturn_lr_nod_phone_selfie_young_man_21s.mp4")
    marks: list[int] = []
    clip = tmp_path / "faded.mp4"
    write_clip(splice([(source, 0, 2), (source, 7.5, 10.5), (source, 2.3, 5.5)], fade=4, style="moving", marks=marks), clip)
    pictures = pictures_of(clip)
    found = cuts(steps_from(pictures))
    assert len(found) == len(marks) == 2
    assert all(0 <= t - mark / SPLICE_FPS <= 6 / SPLICE_FPS for t, mark in zip(found, marks, strict=True))  # at the fade's end
    assert cuts(steps_from(pictures, fade_residual=-1.0)) == []


def textured(seed: int, size=(240, 320)) -> np.ndarray:
    """A grey picture with broad shapes and finer detail (edges for the sharpness to measure), float."""
    import cv2

    rng = np.random.default_rng(seed)
    broad = cv2.resize(rng.integers(0, 255, (6, 8), dtype=np.uint8), size[::-1], interpolation=cv2.INTER_CUBIC)
    detail = cv2.resize(rng.integers(0, 255, (30, 40), dtype=np.uint8), size[::-1], interpolation=cv2.INTER_CUBIC)
    return 0.6 * broad.astype(np.float32) + 0.4 * detail.astype(np.float32)


def focused(blurs: list[float], seed: int = 0) -> list[Step]:
    """A still shot with sensor noise, each frame blurred by its Gaussian sigma (0: as shot)."""
    import cv2

    rng = np.random.default_rng(seed)
    base = textured(seed)
    tracker = ContinuityTracker()
    for i, sigma in enumerate(blurs):
        frame = cv2.GaussianBlur(base, (0, 0), sigma) if sigma else base
        small, fine = thumbnails(np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8))
        tracker.add(i / FPS, small, None, fine)
    return tracker.steps


def test_the_sharpness_of_a_picture_falls_as_it_blurs():
    import cv2

    picture = textured(1)
    values = [sharpness(thumbnails(cv2.GaussianBlur(picture, (0, 0), s).astype(np.uint8) if s else picture.astype(np.uint8))[1]) for s in (0, 1, 2, 4)]
    assert values == sorted(values, reverse=True)


def test_a_cut_that_changes_the_sharpness_at_once_is_found_and_a_gradual_blur_is_not():
    """A still shot cut to a moment 1 pixel softer (focus, motion blur): the grey-level step is 1.5 times
    the stream's median (no limit on it alone sees it), the sharpness jumps in one frame. The same blur
    coming over 20 frames, as a camera refocuses, and a still shot without a cut have none."""
    steps = focused([0.0] * 30 + [1.0] * 30)
    assert cuts(steps) == [steps[29].t]  # the step into frame 30
    assert cuts(steps, CutLimits(jolt=float("inf"))) == []  # without the sharpness: no cut
    assert cuts(focused([min(1.0, max(0.0, (i - 20) * 0.05)) for i in range(60)])) == []
    assert cuts(focused([0.0] * 60)) == []


def test_a_cut_of_real_footage_into_a_softer_recording_is_found_by_its_jump_in_sharpness(tmp_path):
    """The still webcam clip cut between two moments 0.7 s apart, the second piece from a recording 3
    pixels softer (focus a little off; made here, never kept): the person barely moved, so the grey-level
    step is lost among the stream's own, while the sharpness changes in that one frame. Found, at the
    cut, even at a limit a quarter higher; not without the sharpness."""
    import cv2

    from realname_tools.puppets import write_clip
    from realname_tools.splices import FPS as SPLICE_FPS
    from realname_tools.splices import pictures_of, splice, steps_from
    from tests.support.media import video

    source = video("static_webcam_man_real_4s.mp4")
    marks: list[int] = []
    frames = splice([(source, 0.0, 1.5), (source, 2.2, 3.7)], marks=marks)
    clip = tmp_path / "softer.mp4"
    write_clip([cv2.GaussianBlur(f, (0, 0), 3.0) if i >= marks[0] else f for i, f in enumerate(frames)], clip)
    steps = steps_from(pictures_of(clip))
    assert [round(t * SPLICE_FPS) for t in cuts(steps)] == marks
    assert cuts(steps, CutLimits(jolt=1.25 * CutLimits().jolt)) == cuts(steps)
    assert cuts(steps, CutLimits(jolt=float("inf"))) == []
