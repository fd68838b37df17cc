"""The calibration of `replayed_check` (issue 24 item 5): replays of the shared genuine clips against
different checks, through the shipped fingerprint (server/spoof/replay_fingerprint.py).

Each genuine clip is decoded (at most 16 s, at most 640 px a side, as analysed) and copied as a replayer
would pass it on, in memory (never written anywhere): VP8 at 400 kbps, H.264 at CRF 30, scaled to 0.6,
cropped off-centre, brighter with less contrast, at half the frame rate, started 1.3 s later, and all of
these at once. Every version goes through the landmarker at 15 analysed frames a second, as a check's
frames do. Replays: each version (whole, from its 1 s point, and its first half from 0.5 s) against the
clip's fingerprint (whole, or its first half). Different checks: every other clip (as is and with all the
changes) against each clip, and each clip's second half against its first half (same person, room and
camera, other moments). It prints the lowest replay, the highest different check, the replays too
short or still to judge, and the costs (the fingerprint per frame, one comparison).

    python -m realname_tools.replays calibrate [--media ../shared/media] [--json /tmp/replays.json]
"""

from __future__ import annotations

import argparse
import fractions
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from realname_tools.output import emit_json
from realname_tools.splices import GENUINE

CLIPS = [c for c in GENUINE if not c.startswith("attack_")]  # the live single-face clips
MAX_SECONDS = 16.0
ANALYSED_FPS = 15.0
LATE_S = 1.3  # the replay started this much later


def decode(path: Path) -> list[tuple[float, np.ndarray]]:
    """(time, RGB at the analysis size) of each frame of the clip's first MAX_SECONDS."""
    import av
    import cv2

    from server.liveness.analyzer import analysis_size

    out = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            t = float(frame.time) if frame.time is not None else index / 30.0
            if t > MAX_SECONDS:
                break
            size = analysis_size(frame.width, frame.height)
            rgb = frame.to_ndarray(format="rgb24")
            out.append((t, rgb if rgb.shape[1::-1] == size else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)))
    return out


def encoded(frames: list[tuple[float, np.ndarray]], codec: str) -> list[tuple[float, np.ndarray]]:
    """The frames through an encoder and back: `libvpx` at 400 kbps (a WebRTC sender's real-time
    settings) or `libx264` at CRF 30."""
    import av

    h, w = (d // 2 * 2 for d in frames[0][1].shape[:2])
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height, encoder.pix_fmt = w, h, "yuv420p"
    encoder.time_base = fractions.Fraction(1, 1000)
    if codec == "libvpx":
        encoder.bit_rate = 400_000
        encoder.options = {"deadline": "realtime", "cpu-used": "8"}
    else:
        encoder.options = {"preset": "veryfast", "tune": "zerolatency", "crf": "30"}
    decoder = av.CodecContext.create("vp8" if codec == "libvpx" else "h264", "r")
    packets = []
    for t, rgb in frames:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = int(t * 1000), encoder.time_base
        packets += encoder.encode(frame)
    packets += encoder.encode(None)
    images = [f.to_ndarray(format="rgb24") for p in [*packets, None] for f in decoder.decode(p)]
    return list(zip([t for t, _ in frames], images, strict=False))


def _crop(rgb: np.ndarray, top: float, bottom: float, left: float, right: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    return np.ascontiguousarray(rgb[int(h * top) : h - int(h * bottom), int(w * left) : w - int(w * right)])


def _scaled(rgb: np.ndarray, factor: float) -> np.ndarray:
    import cv2

    return cv2.resize(rgb, (int(rgb.shape[1] * factor) // 2 * 2, int(rgb.shape[0] * factor) // 2 * 2), interpolation=cv2.INTER_AREA)


def _lit(rgb: np.ndarray, gain: float, offset: float) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)


def _everything(frames: list[tuple[float, np.ndarray]]) -> list[tuple[float, np.ndarray]]:
    changed = [(t - 0.7, _lit(_scaled(_crop(x, 0.04, 0.03, 0.05, 0.02), 0.75), 1.1, -20)) for t, x in frames[::2] if t >= 0.7]
    return encoded(changed, "libvpx")


# name -> (the copy, how much later it starts than the clip)
COPIES: dict[str, tuple[Callable[[list[tuple[float, np.ndarray]]], list[tuple[float, np.ndarray]]], float]] = {
    "as is": (lambda f: f, 0.0),
    "vp8": (lambda f: encoded(f, "libvpx"), 0.0),
    "h264": (lambda f: encoded(f, "libx264"), 0.0),
    "scaled": (lambda f: encoded([(t, _scaled(x, 0.6)) for t, x in f], "libx264"), 0.0),
    "cropped": (lambda f: encoded([(t, _crop(x, 0.05, 0.02, 0.07, 0.03)) for t, x in f], "libvpx"), 0.0),
    "brighter": (lambda f: encoded([(t, _lit(x, 0.85, 40)) for t, x in f], "libx264"), 0.0),
    "half rate": (lambda f: encoded(f[::2], "libvpx"), 0.0),
    "later": (lambda f: encoded([(t - LATE_S, x) for t, x in f if t >= LATE_S], "libvpx"), LATE_S),
    "all at once": (_everything, 0.7),
}


def signals_of(frames: list[tuple[float, np.ndarray]], landmarker) -> list:
    """The analysed frames' signals, at most ANALYSED_FPS a second."""
    from server.liveness.analyzer import frame_due
    from server.liveness.signals import frame_signals

    out, last = [], None
    for t, rgb in frames:
        if frame_due(t, last, ANALYSED_FPS):
            last = t
            out.append(frame_signals(t, landmarker.get(rgb), rgb))
    return out


def fingerprint(signals: list, start: float = 0.0, end: float = float("inf"), shift: float = 0.0):
    """The fingerprint of the frames between `start` and `end` on the clip's own timeline (`shift`: how
    much later the copy started)."""
    import dataclasses

    from server.spoof.replay_fingerprint import Fingerprint, FingerprintRecorder

    recorder = FingerprintRecorder()
    for s in signals:
        if start <= s.t + shift < end:
            recorder.add(dataclasses.replace(s, t=s.t + shift))
    found = recorder.fingerprint()
    return Fingerprint.from_bytes(found.to_bytes()) if found is not None else None  # as stored


def calibrate(media: Path) -> dict:
    from server.models.loader import landmarker_file, new_landmarker
    from server.spoof.replay_fingerprint import ReplayLimits, similarity

    landmarker = new_landmarker(landmarker_file())
    analysed: dict[str, dict[str, list]] = {}
    lengths: dict[str, float] = {}
    for clip in CLIPS:
        frames = decode(media / "videos" / clip)
        lengths[clip] = frames[-1][0]
        analysed[clip] = {}
        for name, (copy, _) in COPIES.items():
            print(f"{clip}: {name}", file=sys.stderr)
            analysed[clip][name] = signals_of(copy(frames), landmarker)
    landmarker.close()
    limits = ReplayLimits(prefilter=0.0)  # every candidate offset scored part by part: the true figures
    replays, different = [], []

    def compare(kind: list, label: str, new, earlier) -> None:
        score, overlap = similarity(new, earlier, limits) if new is not None and earlier is not None else (0.0, 0.0)
        kind.append({"pair": label, "similarity": round(score, 3), "overlap_s": round(overlap, 1)})

    for clip in CLIPS:
        half = lengths[clip] / 2
        whole = fingerprint(analysed[clip]["as is"])
        first = fingerprint(analysed[clip]["as is"], 0.0, half) if lengths[clip] >= 6 else None
        for name, (_, shift) in COPIES.items():
            signals = analysed[clip][name]
            compare(replays, f"{clip} {name}, whole", fingerprint(signals, shift=shift), whole)
            compare(replays, f"{clip} {name}, from 1 s", fingerprint(signals, 1.0, shift=shift), whole)
            if first is not None:
                compare(replays, f"{clip} {name}, first half", fingerprint(signals, 0.5, half, shift), first)
                compare(different, f"{clip} {name}, second half against the first", fingerprint(signals, half, shift=shift), first)
        for other in CLIPS:
            if other != clip:
                for name in ("as is", "all at once"):
                    compare(different, f"{other} {name} against {clip}", fingerprint(analysed[other][name], shift=COPIES[name][1]), whole)
    judged = sorted((r for r in replays if r["similarity"] > 0), key=lambda r: r["similarity"])
    different.sort(key=lambda r: -r["similarity"])
    lowest, highest = judged[0]["similarity"], different[0]["similarity"]
    return {
        "limit": limits.similarity,
        "replays": {"pairs": len(replays), "judged": len(judged), "lowest": judged[:5], "not_judged": [r["pair"] for r in replays if r["similarity"] == 0]},
        "different": {"pairs": len(different), "highest": different[:5], "above_limit": sum(r["similarity"] >= limits.similarity for r in different)},
        "missed": sum(r["similarity"] < limits.similarity for r in judged),
        "margins": {"lowest_replay_above_limit": round(lowest - limits.similarity, 3), "limit_above_highest_different": round(limits.similarity - highest, 3)},
        "costs": costs(analysed[CLIPS[1]]["as is"], whole_of=fingerprint),
    }


def costs(signals: list, whole_of: Callable) -> dict:
    """Milliseconds: the fingerprint's share of one analysed frame, and one comparison of two 16 s checks
    (the same footage: every candidate offset is scored part by part, the most a comparison costs)."""
    from server.spoof.replay_fingerprint import FingerprintRecorder, similarity

    started = time.perf_counter()
    for _ in range(20):
        recorder = FingerprintRecorder()
        for s in signals:
            recorder.add(s)
    per_frame = (time.perf_counter() - started) / (20 * len(signals)) * 1000
    whole = whole_of(signals)
    started = time.perf_counter()
    for _ in range(100):
        similarity(whole, whole)
    return {
        "per_frame_ms": round(per_frame, 4),
        "comparison_ms": round((time.perf_counter() - started) / 100 * 1000, 3),
        "seconds_compared": whole.seconds,
        "fingerprint_bytes": len(whole.to_bytes()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realname_tools.replays", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cal = sub.add_parser("calibrate", help="replays of the shared genuine clips against different checks")
    cal.add_argument("--media", default="../shared/media")
    cal.add_argument("--json", default=None, help="write the measurements here")
    args = parser.parse_args(argv)
    result = calibrate(Path(args.media))
    emit_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
