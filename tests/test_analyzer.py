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
