"""Turn a real clip into a YUV4MPEG2 file that Chromium plays as its fake camera.

Chromium's --use-file-for-fake-video-capture reads planar I420 frames from a .y4m file at the rate in
its header and loops the file. The files are written at test time into a temp folder: no image of a
person ever enters the repository.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class Y4mInfo:
    path: Path
    width: int
    height: int
    fps: Fraction
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / float(self.fps)


def _even(value: float) -> int:
    return max(2, round(value) // 2 * 2)


def _fit(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    """Scale into width x height keeping the aspect ratio, pad the rest with black; planar I420 bytes."""
    scale = min(width / frame.width, height / frame.height)
    inner_w, inner_h = min(width, _even(frame.width * scale)), min(height, _even(frame.height * scale))
    i420 = frame.reformat(width=inner_w, height=inner_h, format="yuv420p").to_ndarray()  # (h * 3/2, w)
    y = i420[:inner_h]
    chroma = i420[inner_h:].reshape(2, inner_h // 2, inner_w // 2)
    left, top = (width - inner_w) // 4 * 2, (height - inner_h) // 4 * 2
    canvas_y = np.full((height, width), 16, dtype=np.uint8)
    canvas_y[top : top + inner_h, left : left + inner_w] = y
    canvas_uv = np.full((2, height // 2, width // 2), 128, dtype=np.uint8)
    canvas_uv[:, top // 2 : top // 2 + inner_h // 2, left // 2 : left // 2 + inner_w // 2] = chroma
    return np.concatenate([canvas_y.reshape(-1), canvas_uv.reshape(-1)])


def pixelated(frame: av.VideoFrame, block: int = 48) -> av.VideoFrame:
    """The frame in coarse blocks: a person still sees a head in it, the landmarker finds no face. (With
    16 px blocks it found one in every frame once blurred, as the VP8 round trip blurs; with 48, in none.)"""
    rgb = frame.to_ndarray(format="rgb24")
    h, w = rgb.shape[:2]
    coarse = np.repeat(np.repeat(rgb[block // 2 :: block, block // 2 :: block], block, 0), block, 1)[:h, :w]
    coarse = np.pad(coarse, ((0, h - coarse.shape[0]), (0, w - coarse.shape[1]), (0, 0)), mode="edge")
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(coarse), format="rgb24")


def clip_to_y4m(
    source: Path,
    dest: Path,
    *,
    max_side: int = 640,
    size: tuple[int, int] | None = None,
    max_seconds: float | None = None,
    hold_start_s: float = 0.0,
    hold_repeats: int = 1,
    palindrome: bool = False,
    out_of_reach: Callable[[float], bool] | None = None,
    scene: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Y4mInfo:
    """Write `source` as a .y4m fake camera.

    size: (width, height) to pad into; by default the clip's own aspect with its long side at max_side.
    hold_start_s: prepend the first hold_start_s seconds played forward then backward, so a person who
    starts still (frontal, neutral) stays so for longer before the clip's first movement; hold_repeats
    times over.
    palindrome: the whole played forward then backward, so that its loop has no cut.
    out_of_reach: the clip's seconds whose frames are `pixelated`, as a landmarker that loses a face turned
    beyond its reach sees them.
    scene: each frame (BGR) as the camera's room makes it, e.g. a dim room's dark exposure and sensor noise.
    """
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        fps = Fraction(stream.average_rate or 30).limit_denominator(1_000_000)
        decoded = []
        for frame in container.decode(stream):
            if out_of_reach is not None and frame.pts is not None and out_of_reach(float(frame.pts * frame.time_base)):
                frame = pixelated(frame)
            if scene is not None:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(scene(frame.to_ndarray(format="bgr24"))), format="bgr24")
            decoded.append(frame)
            if max_seconds is not None and len(decoded) >= float(fps) * max_seconds:
                break
    if not decoded:
        raise ValueError(f"{source} has no video frames")
    first = decoded[0]
    if size is None:
        scale = min(1.0, max_side / max(first.width, first.height))
        size = (_even(first.width * scale), _even(first.height * scale))
    width, height = size
    if width % 2 or height % 2:
        raise ValueError("a 4:2:0 fake camera needs an even width and height")
    frames = [_fit(frame, width, height) for frame in decoded]
    if hold_start_s > 0:
        held = frames[: max(1, int(float(fps) * hold_start_s))]
        frames = (held + held[::-1]) * hold_repeats + frames
    if palindrome:
        frames = frames + frames[-2:0:-1]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps.numerator}:{fps.denominator} Ip A1:1 C420jpeg\n".encode())
        for data in frames:
            out.write(b"FRAME\n")
            out.write(data.tobytes())
    return Y4mInfo(dest, width, height, fps, len(frames))
