"""Record a clip's per-frame liveness signals as JSON (the fixtures of the engine's unit tests)."""

from __future__ import annotations

import json
import sys

import av

from server.liveness.analyzer import frame_to_rgb
from server.liveness.signals import frame_signals
from server.models.loader import landmarker_file, new_landmarker


def record(video: str) -> list[dict]:
    landmarker = new_landmarker(landmarker_file())
    rows = []
    try:
        with av.open(video) as container:
            for frame in container.decode(video=0):
                rgb = frame_to_rgb(frame)
                t = float(frame.time)
                signals = frame_signals(t, landmarker.get(rgb), rgb).to_dict()
                rows.append({k: (round(v, 4) if isinstance(v, float) else v) for k, v in signals.items()})
    finally:
        landmarker.close()
    return rows


if __name__ == "__main__":
    rows = record(sys.argv[1])
    with open(sys.argv[2], "w") as stream:
        stream.write("[\n" + ",\n".join(json.dumps(r, separators=(",", ":")) for r in rows) + "\n]\n")
