"""The change watch (server/liveness/change_watch.py): frames whose eyes (or, in the neutral stretch, face)
changed since the last analysed one are analysed whatever the step's rate, so a blink awaited at a few
frames a second is not missed, and a neutral stretch skips only frames that look like an analysed one."""

from dataclasses import replace

import av
import numpy as np

from server.liveness.change_watch import BLINK, ChangeWatch, eye_boxes, luma_plane
from server.liveness.rates import NEUTRAL
from server.liveness.signals import LEFT_EYE, RIGHT_EYE

W, H = 360, 640
EYES = {RIGHT_EYE: (0.38, 0.4), LEFT_EYE: (0.62, 0.4)}  # centres, normalised


def _points() -> np.ndarray:
    points = np.zeros((478, 3), np.float32)
    points[:, 0], points[:, 1] = np.linspace(0.25, 0.75, 478), np.linspace(0.25, 0.8, 478)  # the face's outline
    for eye, (cx, cy) in EYES.items():
        for index, dx, dy in zip(eye, (-0.05, -0.02, 0.02, 0.05, 0.02, -0.02), (0, -0.006, -0.006, 0, 0.006, 0.006), strict=True):
            points[index, :2] = (cx + dx, cy + dy)
    return points


def _face(closed: bool = False, brightness: int = 0, noise: int = 1) -> np.ndarray:
    rng = np.random.default_rng(7 + closed + brightness)
    luma = np.full((H, W), 150, np.int16) + rng.integers(-noise, noise + 1, (H, W))
    for cx, cy in EYES.values():
        x, y = int(cx * W), int(cy * H)
        if closed:
            luma[y - 2 : y + 3, x - 16 : x + 16] = 110  # the lid's line
        else:
            luma[y - 6 : y + 7, x - 16 : x + 16] = 235  # the white
            luma[y - 6 : y + 7, x - 6 : x + 6] = 30  # the iris
    return np.clip(luma + brightness, 0, 255).astype(np.uint8)


def _asks(watch: ChangeWatch, step: str | None, luma: np.ndarray) -> bool:
    return watch.asks(step, lambda: luma)


def test_a_closing_eye_is_seen_and_an_open_one_with_noise_or_another_exposure_is_not():
    watch = ChangeWatch()
    assert not _asks(watch, BLINK, _face(closed=True))  # no reference yet: the rate decides alone
    watch.set_reference(_face(), _points())
    for step in (BLINK, NEUTRAL):
        assert not _asks(watch, step, _face(noise=3))
        assert not _asks(watch, step, _face(brightness=25))  # the camera's exposure moves the whole face
        assert _asks(watch, step, _face(closed=True))
        assert _asks(watch, step, _face()[: H // 2])  # another frame size: the boxes no longer fit
    assert not _asks(watch, None, _face(closed=True))  # a step not watched: the rate decides alone
    watch.clear()
    assert not _asks(watch, BLINK, _face(closed=True))


def test_one_eye_closed_is_not_a_blink():
    watch = ChangeWatch()
    watch.set_reference(_face(), _points())
    wink = _face()
    closed = _face(closed=True)
    x0, y0, x1, y1 = eye_boxes(_points(), W, H)[0]
    wink[y0:y1, x0:x1] = closed[y0:y1, x0:x1]
    assert not _asks(watch, BLINK, wink)


def test_in_the_neutral_stretch_a_face_that_moved_is_analysed_and_a_blink_wait_ignores_it():
    watch = ChangeWatch()
    watch.set_reference(_face(), _points())
    mouth = _face()
    mouth[int(0.6 * H) : int(0.68 * H), int(0.4 * W) : int(0.6 * W)] = 40  # the mouth opens (talking)
    assert _asks(watch, NEUTRAL, mouth)
    assert not _asks(watch, BLINK, mouth)


def test_the_luma_plane_of_a_decoded_frame_is_read_without_conversion():
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:, : W // 2] = 200
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    luma = luma_plane(frame)
    assert luma.shape == (H, W) and luma[:, : W // 2 - 4].mean() > luma[:, W // 2 + 4 :].mean() + 100
    assert luma_plane(av.VideoFrame.from_ndarray(rgb, format="rgb24")).shape == (H, W)


def test_a_blink_awaited_at_a_few_frames_a_second_is_analysed_where_the_eyes_close():
    """A real clip through the analyzer as the live connection feeds it (every frame observed, analysed when
    due or when the watch asks): the blink is seen, on fewer frames than the page sent."""
    from realname_tools.client import load_clip
    from server.liveness.analyzer import LivenessAnalyzer
    from server.liveness.challenges import parse_challenges
    from server.liveness.engine import LivenessEngine
    from server.liveness.rates import StepRates
    from server.models.loader import landmarker_file, new_landmarker
    from tests.support.media import video

    frames, fps = load_clip(video("lp_d7_winks_blinks_woman_6s.mp4"))
    engine = LivenessEngine(parse_challenges(["blink"]), step_rates=StepRates().with_rate("blink", 4.0))
    analyzer = LivenessAnalyzer(new_landmarker(landmarker_file()), engine)
    watched = 0
    try:
        for index, frame in enumerate(frames):
            t = index / fps
            changed = analyzer.observe(frame, t)
            if not analyzer.wants(t):
                continue
            watched += changed and engine.step() == "blink"
            if analyzer.analyse_frame(frame, t).result is not None:
                break
    finally:
        analyzer.close()
    result = engine.result
    assert result is not None and result.passed, result
    assert watched >= 1  # frames the watch asked for while the blink was awaited
    assert analyzer.frames < index + 1


def test_the_neutral_stretch_asks_for_the_frame_on_which_it_has_lasted_its_time_once():
    """At the stretch's rate the ask would wait for the next due frame (up to a frame interval later);
    the frame from which it has lasted its time is analysed whatever the rate, and only that one."""
    from server.liveness.challenges import parse_challenges
    from server.liveness.change_watch import stretch_due
    from server.liveness.engine import LivenessEngine
    from tests.test_engine import NEUTRAL as NEUTRAL_FACE

    engine = LivenessEngine(parse_challenges("blink"), prompts_at=[10.0])  # a recorded prompt: the stretch waits on
    assert not stretch_due(engine, 0.0)  # no stretch yet
    for t in (0.0, 0.1):
        engine.update(replace(NEUTRAL_FACE, t=t))
    assert engine.step() == NEUTRAL
    assert not stretch_due(engine, 0.15)  # 0.15 s of 0.2 (the first frame of the stream has no lead)
    assert stretch_due(engine, 0.2) and stretch_due(engine, 0.25)
    engine.update(replace(NEUTRAL_FACE, t=0.25))
    assert not stretch_due(engine, 0.3)  # held: the stretch's own rate again
