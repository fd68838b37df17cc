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
        for frame in frames[:40]:
            rgb = frame_to_rgb(frame)
            ours, theirs = direct.get(rgb), public.get(rgb)
            assert len(ours) == len(theirs) == 1
            for a, b in zip(ours, theirs, strict=True):
                assert a.points.dtype == b.points.dtype and np.array_equal(a.points, b.points)
                assert a.blendshapes == b.blendshapes
                assert a.matrix.dtype == b.matrix.dtype and np.array_equal(a.matrix, b.matrix)
    finally:
        direct.close()
        public.close()


def test_one_landmarker_serves_interleaved_streams_as_if_each_had_its_own():
    """IMAGE mode keeps nothing between calls: a stream's faces do not depend on the other streams'
    frames in between, which is what lets the live checks share the analysis threads' landmarkers."""
    from realname_tools.client import load_clip
    from server.liveness.analyzer import frame_to_rgb
    from server.models.loader import landmarker_file, new_landmarker

    ours = [frame_to_rgb(f) for f in load_clip(video(CLIP), max_seconds=1.0)[0][:12]]
    theirs = [frame_to_rgb(f) for f in load_clip(video("blink_frontal_man_phone_portrait_14s.mp4"), max_seconds=1.0)[0][:12]]
    alone, shared = new_landmarker(landmarker_file()), new_landmarker(landmarker_file())
    try:
        for mine, other in zip(ours, theirs, strict=True):
            expected = alone.get(mine)
            shared.get(other)
            got = shared.get(mine)
            assert len(got) == len(expected) == 1
            assert np.array_equal(got[0].points, expected[0].points) and got[0].blendshapes == expected[0].blendshapes
    finally:
        alone.close()
        shared.close()


def test_the_pool_gives_each_thread_its_own_landmarker_until_shutdown():
    import threading

    import pytest

    from server.models.landmarker import LandmarkerPool, synthetic_face
    from server.models.loader import landmarker_file

    pool = LandmarkerPool(landmarker_file())
    seen: dict[str, object] = {}

    def use(name: str) -> None:
        assert len(pool.get(synthetic_face())) == 1
        assert pool.landmarker() is pool.landmarker()
        seen[name] = pool.landmarker()

    try:
        threads = [threading.Thread(target=use, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert pool.size == 2 and seen["a"] is not seen["b"]
        pool.close()  # a stream's release: the landmarkers stay for the next check
        use("a")
        assert pool.size == 3
    finally:
        pool.shutdown()
    assert pool.size == 0
    with pytest.raises(RuntimeError):  # shut down: no thread gets a landmarker again
        pool.get(synthetic_face())
