"""Recordings as a browser's MediaRecorder makes them (WebM, VP8), cut from real clips, for the recorded
check's tests."""

from __future__ import annotations

import fractions
import io
from typing import Any


def webm(frames: list[Any], fps: float, seconds: float, hold_start_s: float = 0.0) -> bytes:
    """`seconds` of the clip as a WebM file, after `hold_start_s` of its first frame held still (the
    customer looking at the camera before the clip's own movements begin)."""
    import av

    held = [frames[0]] * round(hold_start_s * fps)
    chosen = (held + list(frames))[: round(seconds * fps)]
    out = io.BytesIO()
    with av.open(out, mode="w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=fractions.Fraction(round(fps * 1000), 1000))
        stream.width, stream.height, stream.pix_fmt = chosen[0].width, chosen[0].height, "yuv420p"
        stream.bit_rate = 1_000_000
        stream.codec_context.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}  # as a browser's encoder
        stream.thread_count = 1
        for source in chosen:
            frame = av.VideoFrame.from_ndarray(source.to_ndarray(format="yuv420p"), format="yuv420p")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()
