"""Where PAD looks: the face box the MiniFASNet crops are placed around, from MediaPipe's landmarks.

The networks were trained on crops around an SCRFD face box (models/pad.py). The analysis has already
found the face's mesh on the same frame, so the box is placed from the mesh instead of running SCRFD
again (21 ms a scored frame on this 2-core machine, more than both networks together): SCRFD's box is
the mesh's extent, as wide, 1.14 times as tall and centred 6 % of the mesh's height higher (its box
takes in the forehead above the mesh). Fitted by least squares on the 1617 frames PAD would score, every
fifth frame of the 131 clips of `server/spoof/calibration/minifasnet-ensemble.md`: against SCRFD's box,
IoU median 0.94 (5th percentile 0.87; genuine 0.95 / 0.89), centre 2 % of the box's width away (95th
percentile 5 %). The worst are dim screen replays, where SCRFD's box runs down the screen's dark edge.
"""

from __future__ import annotations

import numpy as np

MESH_POINTS = 468  # the iris points are left out
CENTRE_X = 0.002  # of the mesh's width, rightwards
CENTRE_Y = -0.061  # of the mesh's height, downwards
WIDTH = 0.980  # of the mesh's width
HEIGHT = 1.136  # of the mesh's height


def face_box(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """The face box x0, y0, x1, y1 in pixels of a frame `width` x `height`, from its normalised landmarks (478 x 3)."""
    mesh = np.asarray(points, dtype=np.float64)[:MESH_POINTS, :2] * (width, height)
    (x0, y0), (x1, y1) = mesh.min(axis=0), mesh.max(axis=0)
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2 + CENTRE_X * w, (y0 + y1) / 2 + CENTRE_Y * h
    return np.array([cx - WIDTH * w / 2, cy - HEIGHT * h / 2, cx + WIDTH * w / 2, cy + HEIGHT * h / 2], dtype=np.float32)
