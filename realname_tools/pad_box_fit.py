"""The fit of `pad_box` (server/spoof/pad_box.py): SCRFD's face box from the extent of MediaPipe's mesh.

Every `--every`-th frame of the clips goes through the landmarker at the analysis size; the frames PAD
would score (`PadFramePolicy.wants`, the pose taken from the clip's first 15 one-face frames as eval-pad
takes it) are also run through SCRFD (the box the MiniFASNet networks were trained on). The box's centre
offset and size, in the mesh's width and height, are fitted by least squares, and both boxes compared.

    python -m realname_tools.pad_box_fit --clips ../shared/media/pad_clips.csv --root ../shared/media/videos \
        [--clips /tmp/pad-attacks/pad_clips.csv --root /tmp/pad-attacks ...] [--every 5] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from statistics import median

import numpy as np

from server.spoof.pad_box import MESH_POINTS


def collect(clips: list[tuple[str, Path]], every: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(label of each frame, mesh extents x0 y0 x1 y1, SCRFD boxes) of the frames PAD would score."""
    import av

    from server.liveness.analyzer import frame_to_rgb
    from server.liveness.signals import frame_signals
    from server.matching.faces import detect_all
    from server.models.loader import landmarker_file, load_face_models, new_landmarker
    from server.spoof.pad import PadFramePolicy

    detector, landmarker, policy = load_face_models().detector, new_landmarker(landmarker_file()), PadFramePolicy()
    labels, extents, boxes = [], [], []
    try:
        for label, path in clips:
            poses: list[tuple[float, float]] = []
            with av.open(str(path)) as container:
                for index, frame in enumerate(container.decode(container.streams.video[0])):
                    if index % every:
                        continue
                    rgb = frame_to_rgb(frame)
                    faces = landmarker.get(rgb)
                    if len(faces) != 1:
                        continue
                    s = frame_signals(0.0, faces, rgb)
                    if len(poses) < 15:
                        poses.append((s.yaw, s.pitch))
                    reference = (median(p[0] for p in poses), median(p[1] for p in poses))
                    if not policy.wants(s.face_count, s.yaw, s.pitch, s.sharpness, s.face_px, reference):
                        continue
                    found, _ = detect_all(detector, np.ascontiguousarray(rgb[:, :, ::-1]))
                    if not found:
                        continue
                    mesh = np.asarray(faces[0].points, dtype=np.float64)[:MESH_POINTS, :2] * (rgb.shape[1], rgb.shape[0])
                    labels.append(label)
                    extents.append([*mesh.min(axis=0), *mesh.max(axis=0)])
                    boxes.append(max(found, key=lambda f: f.area).box)
    finally:
        landmarker.close()
    return labels, np.asarray(extents), np.asarray(boxes, dtype=np.float64)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    area = lambda c: (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1])  # noqa: E731
    return w * h / (area(a) + area(b) - w * h)


def fit(labels: list[str], extents: np.ndarray, boxes: np.ndarray) -> dict:
    w, h = extents[:, 2] - extents[:, 0], extents[:, 3] - extents[:, 1]
    cx, cy = (extents[:, 0] + extents[:, 2]) / 2, (extents[:, 1] + extents[:, 3]) / 2
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    # Each ratio's least-squares constant is its mean.
    centre_x, centre_y = float(np.mean(((boxes[:, 0] + boxes[:, 2]) / 2 - cx) / w)), float(np.mean(((boxes[:, 1] + boxes[:, 3]) / 2 - cy) / h))
    width, height = float(np.mean(bw / w)), float(np.mean(bh / h))
    px, py = cx + centre_x * w, cy + centre_y * h
    placed = np.c_[px - width * w / 2, py - height * h / 2, px + width * w / 2, py + height * h / 2]
    overlap = iou(placed, boxes)
    offset = np.hypot(px - (boxes[:, 0] + boxes[:, 2]) / 2, py - (boxes[:, 1] + boxes[:, 3]) / 2) / bw

    def spread(values: np.ndarray) -> dict:
        return {"median": round(float(np.median(values)), 3), "p5": round(float(np.percentile(values, 5)), 3),
                "p95": round(float(np.percentile(values, 95)), 3), "min": round(float(values.min()), 3), "max": round(float(values.max()), 3)}

    by_label = {label: spread(overlap[[x == label for x in labels]]) for label in sorted(set(labels))}
    return {"frames": len(labels), "centre_x": round(centre_x, 3), "centre_y": round(centre_y, 3), "width": round(width, 3),
            "height": round(height, 3), "iou": spread(overlap), "iou_by_label": by_label, "centre_offset_over_box_width": spread(offset)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realname_tools.pad_box_fit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", action="append", required=True, help="CSV with columns file,label (repeatable)")
    parser.add_argument("--root", action="append", help="folder the matching --clips CSV's files are in (default: the CSV's folder)")
    parser.add_argument("--every", type=int, default=5, help="every k-th frame of each clip")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    roots = args.root or []
    clips = []
    for number, listing in enumerate(args.clips):
        root = Path(roots[number]) if number < len(roots) else Path(listing).parent
        with open(listing, newline="", encoding="utf-8") as stream:
            clips.extend((row["label"], root / row["file"]) for row in csv.DictReader(stream))
    report = fit(*collect(clips, max(1, args.every)))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['frames']} frames: centre {report['centre_x']:+} w, {report['centre_y']:+} h; size {report['width']} w x {report['height']} h")
        print(f"IoU with SCRFD's box {report['iou']}; by label {report['iou_by_label']}")
        print(f"centre offset over the box's width {report['centre_offset_over_box_width']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
