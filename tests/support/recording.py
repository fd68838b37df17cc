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


def crafted_webm(width: int, height: int, fps: float, seconds: float) -> bytes:
    """A hostile recording as issue 25 describes it: one VP8 key frame of `width`x`height`, then copies of
    one tiny inter frame, each of which still decodes to a whole frame of that size. Small on the wire,
    costly to decode. Made in memory (never written to the repository)."""
    import av
    import numpy as np

    out = io.BytesIO()
    rate = fractions.Fraction(round(fps * 1000), 1000)
    with av.open(out, mode="w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {"deadline": "realtime", "cpu-used": "16", "lag-in-frames": "0"}
        stream.thread_count = 1
        noise = np.random.default_rng(7).integers(0, 24, (height, width, 3), dtype=np.uint8)
        image = (np.linspace(0, 200, width, dtype=np.uint8)[None, :, None] + noise).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        packets = []
        for index in range(2):
            frame.pts = index
            packets += stream.encode(frame)
        packets += stream.encode(None)
        key, inter = bytes(packets[0]), bytes(packets[-1])
        time_base = stream.time_base or fractions.Fraction(1, 1000)
        for index in range(round(seconds * fps)):
            packet = av.Packet(key if index == 0 else inter)
            packet.pts = packet.dts = round(index / fps / time_base)
            packet.time_base = time_base
            packet.stream = stream
            packet.is_keyframe = index == 0
            container.mux(packet)
    return out.getvalue()
