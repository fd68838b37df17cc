"""Calibrate the change watch's levels (server/liveness/change_watch.py) on the shared clips.

    python -m realname_tools.change_watch ../shared/media/videos

Every frame of each clip of the bench's cases is analysed (realname_tools/bench/step_rates.py
`clip_signals`) and compared with the frames before it that may be the watch's reference (one face, open
eyes), as the watch compares a received frame with the last analysed one. The eyes' change where the later
frame's eyes are closed (a blink the watch must not miss) against where they are open (frames it adds);
the face's change where the landmarker saw the face as it was (within 1 degree, the expression within
0.05) against where it moved (2 degrees or more, or the mouth or eyes by 0.15 or more).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _quantiles(values: list[float]) -> dict[str, float] | None:
    import numpy as np

    if not values:
        return None
    a = np.array(values)
    return {q: round(float(np.quantile(a, p)), 2) for q, p in (("min", 0), ("p01", 0.01), ("p05", 0.05), ("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1))}


def _share_over(values: list[float], level: float) -> float | None:
    return round(sum(v >= level for v in values) / len(values), 4) if values else None


def _moved(a, b) -> float:
    """How far the landmarker saw the face move between two frames: degrees, or expression x 10."""
    expression = max(abs(a.jaw_open - b.jaw_open), abs(a.smile - b.smile), abs(a.eyes_closed - b.eyes_closed))
    return max(abs(a.yaw - b.yaw), abs(a.pitch - b.pitch), 10 * expression)


def calibrate(videos: str | Path, max_back: int = 3) -> dict[str, Any]:
    """Pairs at most `max_back` frames apart (the reference live is at most a few frames old)."""
    from server.liveness.change_watch import EYE_LEVEL, FACE_LEVEL
    from server.liveness.thresholds import Thresholds

    from .bench.frame_rate_cut import CASES
    from .bench.step_rates import clip_signals

    closed_level = Thresholds().eyes_closed
    eyes_closed, eyes_open, face_still, face_moved = [], [], [], []
    for clip in sorted({c for c, _, _ in CASES}):
        path = Path(videos) / clip
        if not path.is_file():
            continue
        rows, _rate, changes = clip_signals(path)
        by_t = {s.t: (i, s) for i, s in enumerate(rows)}
        for t, refs in changes.items():
            i, s = by_t[t]
            if s.face_count != 1:
                continue
            for t_ref, (eyes, face) in refs.items():
                j, r = by_t[t_ref]
                if i - j > max_back:
                    continue
                (eyes_closed if s.eyes_closed >= closed_level else eyes_open).append(eyes)
                moved = _moved(s, r)
                if moved <= 1.0:
                    face_still.append(face)
                elif moved >= 2.0:
                    face_moved.append(face)
    return {
        "eye_level": EYE_LEVEL,
        "face_level": FACE_LEVEL,
        "max_frames_back": max_back,
        "eyes_closed": _quantiles(eyes_closed),
        "eyes_open": _quantiles(eyes_open),
        "eyes_closed_under_level": None if not eyes_closed else round(1 - _share_over(eyes_closed, EYE_LEVEL), 4),
        "eyes_open_over_level": _share_over(eyes_open, EYE_LEVEL),
        "face_still": _quantiles(face_still),
        "face_moved": _quantiles(face_moved),
        "face_still_over_level": _share_over(face_still, FACE_LEVEL),
        "face_moved_under_level": None if not face_moved else round(1 - _share_over(face_moved, FACE_LEVEL), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realname_tools.change_watch", description=__doc__.splitlines()[0])
    parser.add_argument("videos")
    args = parser.parse_args(argv)
    print(json.dumps(calibrate(args.videos), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
