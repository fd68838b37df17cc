"""The landmarker's direct MediaPipe calls (server/models/landmarker.py) against the public Tasks API."""

from __future__ import annotations

import numpy as np

from tests.support.media import video

CLIP = "headturn_lr_nod_phone_selfie_young_man_21s.mp4"


def test_direct_landmarker_calls_give_the_public_api_result():
    from realname_tools.client import load_clip
    from server.liveness.analyzer import frame_to_rgb
    from server.models.loader import landmarker_file, new_landmarker

    frames, _fps = load_clip(video(CLIP), max_seconds=2.0)
    direct, public = new_landmarker(landmarker_file()), new_landmarker(landmarker_file())
    public._direct = None  # the MediaPipe Tasks API as documented
    try:
        assert direct._direct is not None, "the direct path is not in use with this MediaPipe"
        for index, frame in enumerate(frames[:40]):
            rgb = frame_to_rgb(frame)
            ours, theirs = direct.get(rgb, index * 33), public.get(rgb, index * 33)
            assert len(ours) == len(theirs) == 1
            for a, b in zip(ours, theirs, strict=True):
                assert a.points.dtype == b.points.dtype and np.array_equal(a.points, b.points)
                assert a.blendshapes == b.blendshapes
                assert a.matrix.dtype == b.matrix.dtype and np.array_equal(a.matrix, b.matrix)
    finally:
        direct.close()
        public.close()
