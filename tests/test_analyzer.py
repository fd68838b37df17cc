"""The live analysis's frame conversion (server/liveness/analyzer.py)."""

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from server.liveness.analyzer import frame_to_arrays


def test_a_shared_scaler_gives_the_pixels_of_a_fresh_one():
    """The live analysis keeps one scaler per stream; frames of other sizes and the one-off path agree."""
    rng = np.random.default_rng(3)
    shared = VideoReformatter()
    for width, height in ((358, 640), (1280, 720), (358, 640)):
        frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), format="rgb24").reformat(format="yuv420p")
        rgb, gray = frame_to_arrays(frame, shared)
        fresh_rgb, fresh_gray = frame_to_arrays(frame)
        assert rgb.shape[:2] == gray.shape and max(rgb.shape[:2]) <= 640
        assert np.array_equal(rgb, fresh_rgb) and np.array_equal(gray, fresh_gray)
