"""The live analysis's frame conversion (server/liveness/analyzer.py)."""

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from server.liveness.analyzer import frame_to_rgb


def test_a_shared_scaler_gives_the_pixels_of_a_fresh_one():
    """The live analysis keeps one scaler per stream; frames of other sizes and the one-off path agree."""
    rng = np.random.default_rng(3)
    shared = VideoReformatter()
    for width, height in ((358, 640), (1280, 720), (358, 640)):
        frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), format="rgb24").reformat(format="yuv420p")
        rgb = frame_to_rgb(frame, shared)
        assert rgb.shape[2] == 3 and max(rgb.shape[:2]) <= 640
        assert np.array_equal(rgb, frame_to_rgb(frame))


def test_a_frame_sent_twice_counts_as_a_repeat_and_camera_frames_do_not():
    """The repeat count behind the `repeated_frames` risk signal, on a real clip: a camera's consecutive
    frames never match (sensor noise), a frame delivered again by a virtual camera always does."""
    from realname_tools.client import load_clip
    from server.liveness.analyzer import LivenessAnalyzer
    from server.liveness.challenges import parse_challenges
    from server.liveness.engine import LivenessEngine
    from server.models.loader import landmarker_file, new_landmarker
    from tests.support.media import video

    frames, fps = load_clip(video("headturn_lr_nod_phone_selfie_young_man_21s.mp4"), max_seconds=1.5)
    engine = LivenessEngine(parse_challenges(["smile"]), challenge_timeout_s=1e6, start_timeout_s=1e6)
    analyzer = LivenessAnalyzer(new_landmarker(landmarker_file()), engine)
    try:
        sequence = frames[:12] + [frames[11]] * 3 + frames[12:20]
        for index, frame in enumerate(sequence):
            analyzer.analyse_frame(frame, index / fps)
    finally:
        analyzer.close()
    assert analyzer.analysed_pairs == len(sequence) - 1
    assert analyzer.repeated_frames == 3
