"""The passive anti-spoofing models: the original code's crop, file checks, and real scores on real frames."""

from __future__ import annotations

import av
import numpy as np
import pytest

from server.matching.faces import detect_all
from server.models.files import ModelFileError
from server.models.loader import load_face_models
from server.models.pad import PAD_FILES, crop_region, integer_box, landmark_box, load_pad, locate_pad_models, model_input
from server.models.pad_files import import_pad_models, source_url
from server.spoof.calibration import PadCalibrationError, load_thresholds
from tests.support.media import pad_model_dir, video


def test_integer_box_is_inclusive_width_and_height():
    assert integer_box([10.7, 20.2, 50.9, 80.1]) == (10, 20, 41, 60)


def test_crop_is_scale_boxes_around_the_centre():
    # A 40x40 box centred at (320, 240) in 640x480: 2.7 boxes is 108 px wide.
    assert crop_region(640, 480, (300, 220, 40, 40), 2.7) == (266, 186, 374, 294)


def test_crop_shifts_back_inside_at_the_left_and_top_edges():
    left, top, right, bottom = crop_region(640, 480, (0, 0, 40, 40), 4.0)
    assert (left, top) == (0, 0)
    assert (right, bottom) == (160, 160)  # same size, shifted rather than clamped


def test_crop_shifts_back_inside_at_the_right_and_bottom_edges():
    left, top, right, bottom = crop_region(640, 480, (600, 440, 40, 40), 2.7)
    assert (right, bottom) == (639, 479)
    assert right - left == 108 and bottom - top == 108


def test_crop_scale_shrinks_to_fit_a_large_face():
    # A 300 px face cannot be 4 boxes wide in a 480 px high frame: scale = 479/300.
    left, top, right, bottom = crop_region(640, 480, (170, 90, 300, 300), 4.0)
    assert (top, bottom) == (0, 479)
    assert 0 <= left and right <= 639


def test_model_input_is_bgr_0_255_nchw_80():
    frame = np.zeros((480, 640, 3), dtype=np.uint8)
    frame[..., 0] = 200  # blue channel of a BGR frame
    tensor = model_input(frame, (300, 220, 40, 40), 2.7)
    assert tensor.shape == (1, 3, 80, 80) and tensor.dtype == np.float32
    assert tensor[0, 0].mean() == 200 and tensor[0, 1:].max() == 0


def test_missing_or_wrong_files_are_refused(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        locate_pad_models(tmp_path / "nowhere")
    with pytest.raises(ModelFileError, match="missing"):
        locate_pad_models(tmp_path)
    for spec in PAD_FILES:
        (tmp_path / spec.name).write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="SHA-256"):
        locate_pad_models(tmp_path)
    with pytest.raises(ModelFileError, match="SHA-256"):
        import_pad_models(tmp_path, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_import_copies_and_verifies(tmp_path):
    installed = import_pad_models(pad_model_dir(), tmp_path / "pad")
    assert [p.name for p in installed] == [spec.name for spec in PAD_FILES]
    assert locate_pad_models(tmp_path / "pad") == tmp_path / "pad"


def test_fetch_points_at_the_pinned_commit():
    assert "c175efef505bc275f7835cc9aa2aecab305ac184/weights/MiniFASNetV2.onnx" in source_url(PAD_FILES[0])


def test_shipped_calibration_and_a_broken_one(tmp_path):
    thresholds = load_thresholds()
    assert 0 < thresholds.attack < thresholds.review < 1
    broken = tmp_path / "pad.json"
    broken.write_text("{}")
    with pytest.raises(PadCalibrationError):
        load_thresholds(broken)


def _frame(clip: str, index: int) -> np.ndarray:
    from server.liveness.analyzer import frame_to_rgb

    with av.open(str(video(clip))) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                rgb = frame_to_rgb(frame)
                return np.ascontiguousarray(rgb[:, :, ::-1])
    raise AssertionError("clip too short")


@pytest.fixture(scope="module")
def boxes():
    """The face box of a BGR frame's landmarks, as the live check makes it."""
    from server.models.loader import landmarker_file, new_landmarker

    landmarker = new_landmarker(landmarker_file())

    def box(bgr: np.ndarray) -> tuple[float, float, float, float]:
        faces = landmarker.get(np.ascontiguousarray(bgr[:, :, ::-1]))
        assert len(faces) == 1
        return landmark_box(faces[0].points, bgr.shape[1], bgr.shape[0])

    yield box
    landmarker.close()


@pytest.fixture(scope="module")
def pad_models():
    from server.liveness.analyzer import load_pad_models

    return load_pad_models(str(pad_model_dir()))


@pytest.fixture(scope="module")
def scorer(boxes, pad_models):
    """A frame's live score as the live check makes it (analyzer.py score_frame: SCRFD around the landmarks)."""
    from server.liveness.analyzer import score_frame

    def score(bgr: np.ndarray) -> float:
        scored = score_frame((bgr, boxes(bgr)), pad_models)
        assert scored is not None
        return scored[0]

    return score


@pytest.mark.parametrize("clip", ["blink_frontal_man_phone_portrait_14s.mp4", "static_webcam_man_real_4s.mp4"])
def test_a_genuine_frame_scores_live(scorer, clip):
    assert scorer(_frame(clip, 20)) >= load_thresholds().review


@pytest.mark.parametrize(
    "clip", ["attack_monitor_replay_of_headturn_phone_selfie_21s.mp4", "attack_phone_replay_same_man_as_static_webcam_3s.mp4"]
)
def test_a_replayed_frame_scores_attack(scorer, clip):
    assert scorer(_frame(clip, 20)) < load_thresholds().attack


def test_the_live_path_measures_a_genuine_face_s_detail_above_the_shipped_limit(boxes, pad_models):
    from server.liveness.analyzer import score_frame

    frame = _frame("static_webcam_man_real_4s.mp4", 20)
    scored = score_frame((frame, boxes(frame)), pad_models)
    assert scored is not None
    score, noise, detail = scored
    assert score >= load_thresholds().review and noise is not None
    assert detail is not None and detail > load_thresholds().detail_below > 0


def test_the_service_starts_without_pad_unless_it_is_required(caplog):
    from server.liveness.analyzer import pad_models_for_service

    assert pad_models_for_service("", required=False) is None
    assert "UNAVAILABLE" in caplog.text
    with pytest.raises(ModelFileError, match="REQUIRED"):
        pad_models_for_service("", required=True)


def test_a_configured_but_broken_pad_folder_stops_the_start(tmp_path):
    from server.liveness.analyzer import pad_models_for_service

    with pytest.raises(ModelFileError):
        pad_models_for_service(str(tmp_path), required=False)


def _signals(bgr: np.ndarray):
    from server.liveness.signals import frame_signals
    from server.models.loader import landmarker_file, new_landmarker

    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    landmarker = new_landmarker(landmarker_file())
    try:
        return frame_signals(0.0, landmarker.get(rgb), rgb)
    finally:
        landmarker.close()


def test_quality_gating_drops_a_blurred_and_a_dark_frame():
    """A blurred or dark frame says nothing about the face: it is not offered to the model at all."""
    import cv2

    from server.spoof.pad import PadFramePolicy

    frame = _frame("static_webcam_man_real_4s.mp4", 20)
    policy = PadFramePolicy(min_brightness=40.0)

    def wanted(bgr: np.ndarray) -> bool:
        s = _signals(bgr)
        return policy.wants(s.face_count, s.yaw, s.pitch, s.sharpness, s.face_px, None, s.brightness)

    assert wanted(frame)
    assert not wanted(cv2.GaussianBlur(frame, (0, 0), 5))
    assert not wanted((frame * 0.15).astype(np.uint8))


def test_robust_aggregates():
    from server.spoof.pad import aggregate

    scores = [0.02, 0.9, 0.95, 0.97, 0.99, 0.99, 0.99, 1.0]
    assert aggregate([]) is None
    assert aggregate(scores, "median") == pytest.approx(0.98)
    assert aggregate(scores, "trimmed_mean") == pytest.approx((0.95 + 0.97 + 0.99 + 0.99) / 4)
    assert 0.95 < aggregate(scores, "logit_trimmed_mean") < 0.99  # the mid-blink 0.02 does not drag it down
    with pytest.raises(ValueError):
        aggregate(scores, "mean of everything")


def test_each_network_scores_on_its_own_crop_scale(scorer):
    from server.models.pad import combine_live

    ensemble = load_pad(pad_model_dir())
    assert [m.spec.crop_scale for m in ensemble.models] == [2.7, 4.0]  # Minivision's V2 at 2.7, V1SE at 4.0, 80x80
    frame = _frame("static_webcam_man_real_4s.mp4", 20)
    faces, image = detect_all(load_face_models().detector, frame)
    box = max(faces, key=lambda f: f.area).box
    live = ensemble.live_scores(image, box)
    assert len(live) == 2 and combine_live(live) == pytest.approx(ensemble.get(image, box))


def test_a_dim_face_is_brightened_before_it_is_scored():
    """The networks read a dark face as a presentation; the exposure rule scores it as a camera's
    auto-exposure would have shown it, and leaves a well-lit face alone."""
    from server.models.pad import Exposure

    ensemble = load_pad(pad_model_dir())
    frame = _frame("lp_d18_mouth_open_eyes_closed_man_7s.mp4", 20)
    faces, image = detect_all(load_face_models().detector, frame)
    box = max(faces, key=lambda f: f.area).box
    assert Exposure().gain(image, integer_box(box)) < 1.2  # lit as filmed: (almost) untouched
    dim = (image * 0.3).astype(np.uint8)
    assert Exposure().gain(dim, integer_box(box)) > 2.5
    raw, brightened = ensemble.live_scores(dim, box, False)[0], ensemble.live_scores(dim, box)[0]
    assert brightened > raw


def _synthetic_face(luma: float, sigma: float, seed: int = 5) -> np.ndarray:
    """A BGR face-like image: a smooth shaded ellipse on a gradient, `luma` bright, with white sensor noise."""
    y, x = np.mgrid[0:160, 0:128].astype(np.float64)
    shading = 1.0 + 0.25 * np.exp(-(((x - 64) / 40) ** 2 + ((y - 80) / 55) ** 2)) + 0.002 * (x - y)
    grey = luma * shading / shading.mean() + np.random.default_rng(seed).normal(0.0, sigma, shading.shape)
    return np.repeat(np.clip(np.rint(grey), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_the_noise_estimate_reads_added_noise_and_not_the_face():
    from server.models.pad import noise_level

    clean = _synthetic_face(120.0, 0.0)[..., 0]
    assert noise_level(clean) < 0.5  # shading and gradients cancel: only rounding is left
    for sigma in (2.0, 5.0):
        assert noise_level(_synthetic_face(120.0, sigma)[..., 0]) == pytest.approx(sigma, rel=0.2)
    assert noise_level(np.zeros((2, 2))) == 0.0


def test_detail_reads_fine_edges_over_the_noise_and_not_the_gain():
    import cv2

    from server.models.pad import detail_level

    rng = np.random.default_rng(3)
    texture = cv2.resize(rng.uniform(60, 180, (24, 24)).astype(np.float32), (96, 96), interpolation=cv2.INTER_NEAREST)  # sharp edges
    recaptured = cv2.GaussianBlur(texture, (0, 0), 2.0)  # the same face through a second optic
    noise = rng.normal(0, 4, texture.shape).astype(np.float32)
    assert detail_level(texture + noise) > 3 * detail_level(recaptured + noise)
    assert detail_level(3 * (texture + noise)) == pytest.approx(detail_level(texture + noise), rel=1e-3)  # a gain scales both alike
    assert detail_level(np.zeros((4, 4))) == 0.0


def test_a_dark_but_clean_face_stays_below_the_noise_limit_and_a_dim_room_does_not():
    """Darker skin in ordinary light is brightened as much as a face in a dim room, but only the room's
    sensor noise grows with the gain: the stratifier is the noise, not the luma."""
    from realname_tools.pad_crossval import NOISY_ABOVE
    from server.models.pad import Exposure

    box = (0, 0, 128, 160)
    dark_skin = Exposure().noise(_synthetic_face(40.0, 0.3), box)  # gain 3, a clean sensor
    dim_room = Exposure().noise(_synthetic_face(30.0, 1.5), box)  # gain 4, the sensor's noise with it
    lit = Exposure().noise(_synthetic_face(130.0, 1.0), box)  # gain 1
    assert dark_skin < NOISY_ABOVE < dim_room
    assert lit < NOISY_ABOVE
    assert Exposure().noise(_synthetic_face(30.0, 1.5), box) > Exposure().noise(_synthetic_face(120.0, 1.5), box)  # the gain brightens it


def test_pad_s_own_one_thread_detector_finds_the_service_s_boxes():
    """PAD's SCRFD runs on a session of its own on one thread (less CPU than the default threads): the same boxes."""
    from server.liveness.analyzer import load_pad_models

    shared = load_face_models().detector
    own = load_pad_models(str(pad_model_dir()), detector=shared).detector
    assert own is not shared and own.model_file == shared.model_file
    for clip in ("blink_frontal_man_phone_portrait_14s.mp4", "attack_phone_replay_same_man_as_static_webcam_3s.mp4"):
        frame = _frame(clip, 20)
        assert [f.box.tolist() for f in own.get(frame)] == [f.box.tolist() for f in shared.get(frame)]


def _iou(a, b) -> float:
    w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("clip,index", [("blink_frontal_man_phone_portrait_14s.mp4", 20), ("static_webcam_man_real_4s.mp4", 20),
                                         ("lp_d3_expressions_headtilt_woman_12s.mp4", 60),
                                         ("attack_phone_replay_same_man_as_static_webcam_3s.mp4", 20)])
def test_pad_s_box_is_the_one_scrfd_finds_on_the_whole_frame(boxes, pad_models, clip, index):
    """The landmarks' box (models/pad.py landmark_box) is near SCRFD's; SCRFD looking only around it, on a
    sixth of the pixels (analyzer.py pad_box), finds the box it finds on the whole frame at 640 px."""
    from server.liveness.analyzer import pad_box

    frame = _frame(clip, index)
    faces, image = detect_all(load_face_models().detector, frame)
    assert image.shape == frame.shape
    detected = max(faces, key=lambda f: f.area).box
    near = boxes(frame)
    assert _iou(near, detected) > 0.85
    box = pad_box(pad_models.detector, frame, near)
    assert box is not None and _iou(box, detected) > 0.9
    assert _iou(box, detected) > _iou(near, detected) - 0.02
