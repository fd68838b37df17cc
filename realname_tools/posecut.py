"""Does the head's pose and the face's geometry show a cut between two still moments (issue 24)?

A still-to-still cut changes the thumbnail by only 1-2 times the stream's median step (docs/anti-spoofing.md,
"A jump in sharpness": what is left). Across it the head's pose (yaw, pitch, roll), the face's place and
size and the eyes' and mouth's openness may still jump at once, where a still genuine head only drifts. The
landmarks exist only on the analysed frames, so the cue compares consecutive analysed frames: a step whose
neighbours on both sides are still.

`measure` runs the service's landmarker (IMAGE mode, at the analysis size) on every frame of the shared
genuine clips (splices.GENUINE), their degraded copies (`--more-genuine`: a `python -m server pad-attacks`
folder) and the design splices (splices.SPLICES, eval_injection.SPLICES and, with `--more-genuine`,
STILL_SPLICES: still-shot cuts of degraded copies; cut positions known), and caches the features and
landmarks under /tmp (never in the repository). It then takes the frames the live page sends (20 a second)
and, of those, the ones analysed at each rate of RATES from each of PHASES starting frames. For each
analysed step and group (pose, place, size, eyes, mouth, the landmarks' shape) it reports two measures.
`step` is the geometric mean of the step's change over the stream's median change and over the largest
change beside it. `shift` is how far the mean of the analysed frames before it moves to that of the frames
after it, against their spread. Genuine steps count only outside movements: still sides (STILL_POSE,
STILL_PLACE). It prints, per measure, each genuine person's highest value, the limit left one person out
(MARGIN times the others' highest), and the design cuts over it; and, per still-shot splice, its cuts'
values (docs/anti-spoofing.md, "The head's pose and the landmarks across a still cut").

    python -m realname_tools.posecut measure [--media ../shared/media] [--more-genuine /tmp/pad-attacks]
        [--cache /tmp/posecut/landmarks.json] [--json /tmp/posecut/measure.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from realname_tools import splices as sp
from realname_tools.output import emit_json

# The analysis rates asked (server/liveness/rates.py: 5 before a prompt, 8 for a smile, 10 for a blink, 12 for a
# movement under way). On a 25 fps clip the page sends 20 frames a second, 0.04 and 0.08 s apart, so
# `frame_due` takes 5, 7.5 and 10 of them a second: the range of the steps a still moment falls in.
RATES = (5.0, 8.0, 12.0)
PHASES = 4  # starting offsets (sent frames) of the analysed frames
SIDE = 2  # steps on each side whose largest is the side's movement

# Still-shot cuts of degraded copies (the design set of docs/anti-spoofing.md "Still shots"): copy of
# `--more-genuine` (None: the shared clip) and the pieces (seconds).
LESTARI = "static_webcam_man_real_4s.mp4"
D0 = "lp_d0_smile_greenscreen_asian_man_3s.mp4"
STILL_SPLICES: dict[str, tuple[str | None, str, list[tuple[float, float]]]] = {
    "st_defocus_blinkdet": ("gen_genuine_defocus_blinkdet_man.mp4", sp.BLINK, [(0, 1.5), (3.2, 4.2), (1.4, 2.2)]),
    "st_lowlight_blinkdet": ("gen_genuine_low_light_blinkdet_man.mp4", sp.BLINK, [(0, 1.4), (3.1, 4.1), (4.6, 5.6)]),
    "st_lowres_blinkdet": ("gen_genuine_low_resolution_blinkdet_man.mp4", sp.BLINK, [(0.2, 1.3), (3.3, 4.3), (1.5, 2.4)]),
    "st_lowres_d0": ("gen_genuine_low_resolution_lp_d0_man.mp4", D0, [(0, 0.45), (1.0, 2.6)]),
    "st_d0": (None, D0, [(0, 0.45), (1.0, 2.6)]),
    "st_lestari": (None, LESTARI, [(0, 1.5), (2.2, 3.7)]),
    "st_defocus_lestari": ("gen_genuine_defocus_lestari_webcam_man.mp4", LESTARI, [(0, 1.2), (2.0, 3.6)]),
    "st_compressed_d7": ("gen_genuine_compressed_lp_d7_woman.mp4", sp.D7, [(4.3, 5.3), (2.1, 3.0)]),
    "st_defocus_d13": ("gen_genuine_defocus_lp_d13_man.mp4", sp.D13, [(0, 2.0), (3.0, 4.0), (4.5, 5.8)]),
    "st_lowlight_d18": ("gen_genuine_low_light_lp_d18_man.mp4", "lp_d18_mouth_open_eyes_closed_man_7s.mp4", [(0, 1.5), (2.3, 4.5)]),
}

# One person per shared clip (the screen replay of the head-turn selfie is its person).
PERSON = {
    sp.BLINK: "blinkdet", sp.HEADTURN: "tranv", sp.MONITOR: "tranv", LESTARI: "lestari", D0: "lp_d0", sp.D3: "lp_d3",
    sp.D7: "lp_d7", sp.D12: "lp_d12", sp.D13: "lp_d13", "lp_d18_mouth_open_eyes_closed_man_7s.mp4": "lp_d18",
    "attack_phone_replay_selfie_video_young_man_15s.mp4": "phone_replay",
}


def features(frames: list[np.ndarray], landmarker) -> tuple[list[list[float] | None], np.ndarray]:
    """Per BGR frame, as the analyser sees it (its analysis size): yaw, pitch, roll (degrees); the landmarks'
    centre (x, y) and the log of the inter-ocular distance, in pixels of the frame; the eye aspect ratio; the
    mouth's opening over its width (None: not one face); and the landmarks (frames x 478 x 2 pixels, NaN:
    not one face)."""
    import cv2

    from server.liveness.analyzer import analysis_size
    from server.liveness.signals import frame_signals

    out: list[list[float] | None] = []
    points = np.full((len(frames), 478, 2), np.nan, dtype=np.float32)
    for n, bgr in enumerate(frames):
        size = analysis_size(bgr.shape[1], bgr.shape[0])
        rgb = cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA) if size != bgr.shape[1::-1] else bgr, cv2.COLOR_BGR2RGB)
        faces = landmarker.get(rgb)
        if len(faces) != 1:
            out.append(None)
            continue
        s = frame_signals(0.0, faces, rgb)
        h, w = rgb.shape[:2]
        p = faces[0].points[:, :2] * np.array([w, h], dtype=np.float32)
        points[n] = p[:478]
        eyes = float(np.linalg.norm(p[33] - p[263]))  # the eyes' outer corners
        cx, cy = (float(v) for v in p.mean(axis=0))
        out.append([s.yaw, s.pitch, s.roll, cx, cy, math.log(max(eyes, 1.0)), s.ear, s.mouth_open_ratio])
    return out, points


def shape_residual(a: np.ndarray, b: np.ndarray) -> float:
    """How far two sets of landmarks differ in shape: the residual of the best similarity alignment of one on
    the other, in per cent of the shape's size (its centred norm)."""
    a0, b0 = a - a.mean(axis=0), b - b.mean(axis=0)
    a0, b0 = a0 / np.linalg.norm(a0), b0 / np.linalg.norm(b0)
    fit = float(np.linalg.svd(a0.T @ b0, compute_uv=False).sum())
    return 100.0 * math.sqrt(max(0.0, 1.0 - fit * fit))


def aligned_mean(shapes: np.ndarray, onto: np.ndarray) -> np.ndarray:
    """The mean of `shapes` each aligned (rotation, scale, shift) onto `onto`, centred and of unit size."""
    t = onto - onto.mean(axis=0)
    t = t / np.linalg.norm(t)
    out = []
    for shape in shapes:
        c = shape - shape.mean(axis=0)
        c = c / np.linalg.norm(c)
        u, _, vt = np.linalg.svd(c.T @ t)
        out.append(c @ (u @ vt))
    return np.mean(out, axis=0)


# The still moments of a stream: every analysed step on each side within these (a turn or nod in progress is not).
STILL_POSE = 3.0  # degrees between analysed frames
STILL_PLACE = 0.05  # inter-ocular distances
SHIFT_FRAMES = 3  # analysed frames on each side whose means the level shift compares
GROUP_COLUMNS = {"pose": slice(0, 3), "place": slice(3, 5), "size": slice(5, 6), "eyes": slice(6, 7), "mouth": slice(7, 8)}
GROUPS = (*GROUP_COLUMNS, "shape")
GEOMETRY = ("pose", "place", "size", "shape")  # `any`: the largest of these (the eyes and mouth are what the prompts ask to move)
MEASURES = ("step", "shift")
MARGIN = 1.3  # the limit: this times the highest genuine value of the other people


def normalised(f: list[float]) -> np.ndarray:
    """yaw, pitch, roll (degrees), the centre in inter-ocular distances, the log of the inter-ocular distance,
    the eye aspect ratio, the mouth's opening."""
    eyes = math.exp(f[5])
    return np.array([f[0], f[1], f[2], f[3] / eyes, f[4] / eyes, f[5], f[6], f[7]])


def analysed(n: int, rate: float, phase: int) -> list[int]:
    """The frames (of a 25 fps clip) analysed at `rate` when the page sends 20 a second, starting from the
    `phase`-th sent frame (server/liveness/analyzer.py `frame_due`)."""
    from realname_tools.client import sent_at
    from server.liveness.analyzer import frame_due
    from server.liveness.rates import SEND_FPS

    sent = [i for i in range(n) if sent_at(i, sp.FPS, SEND_FPS)][phase:]
    out: list[int] = []
    for i in sent:
        if frame_due(i / sp.FPS, out[-1] / sp.FPS if out else None, rate):
            out.append(i)
    return out


def stream_steps(feats: list[list[float] | None], points: np.ndarray, rate: float, phase: int) -> list[dict]:
    """The analysed steps of a stream (frames without one face left out), each with, per group: `step`, the
    geometric mean of its change over the stream's median change and over the largest change of the SIDE
    steps on either side; `shift`, the change of the mean of SHIFT_FRAMES analysed frames before it to that
    of as many after, over their pooled spread (at least the stream's median change); and `still`: whether
    every step within those frames on both sides stays within STILL_POSE and STILL_PLACE. The `shape` group:
    the landmarks' `shape_residual` between consecutive analysed frames; its shift, that of the sides' aligned
    mean shapes over the largest residual within the sides (at least the stream's median)."""
    idx = [i for i in analysed(len(feats), rate, phase) if feats[i] is not None]
    x = np.array([normalised(feats[i]) for i in idx])
    w = SHIFT_FRAMES
    if len(idx) < 2 * max(w, SIDE + 1):
        return []
    change = {g: np.linalg.norm(np.diff(x[:, c], axis=0), axis=1) for g, c in GROUP_COLUMNS.items()}  # change[g][k-1]: step k
    shapes = points[idx].astype(np.float64)
    change["shape"] = np.array([shape_residual(a, b) for a, b in zip(shapes, shapes[1:], strict=False)])
    medians = {g: max(float(np.median(v)), 1e-6) for g, v in change.items()}
    floor = np.maximum(np.median(np.abs(np.diff(x, axis=0)), axis=0), 1e-4)
    rows = []
    for k in range(max(w, SIDE + 1), len(idx) - max(w, SIDE + 1) + 1):
        row = {"from": idx[k - 1], "at": idx[k], "still": bool(
            all(change["pose"][j] <= STILL_POSE and change["place"][j] <= STILL_PLACE for j in [*range(k - w, k - 1), *range(k, k + w - 1)]))}
        before, after = x[k - w:k], x[k:k + w]
        spread = np.sqrt((before.var(axis=0, ddof=1) + after.var(axis=0, ddof=1)) / 2)
        t = np.abs(after.mean(axis=0) - before.mean(axis=0)) / np.maximum(spread, floor)
        within = [float(change["shape"][j]) for j in [*range(k - w, k - 1), *range(k, k + w - 1)]]
        row["shift_shape"] = (shape_residual(aligned_mean(shapes[k - w:k], shapes[k - 1]), aligned_mean(shapes[k:k + w], shapes[k - 1]))
                              / max(max(within), medians["shape"]))
        for g in (*GROUP_COLUMNS, "shape"):
            v = float(change[g][k - 1])
            side = max(float(change[g][j]) for j in [*range(k - 1 - SIDE, k - 1), *range(k, k + SIDE)])
            row[f"step_{g}"] = math.sqrt(v / medians[g] * v / max(side, medians[g]))
            if g in GROUP_COLUMNS:
                row[f"shift_{g}"] = float(t[GROUP_COLUMNS[g]].max())
        for m in MEASURES:
            row[f"{m}_any"] = max(row[f"{m}_{g}"] for g in GEOMETRY)
        rows.append(row)
    return rows


def frames_of(spec: dict, media: Path, more: Path | None) -> list[np.ndarray]:
    videos = media / "videos"
    if spec["kind"] == "genuine":
        path = (more / spec["clip"]) if spec.get("copy") else videos / spec["clip"]
        return sp.piece_frames(path, 0.0, 60.0, None)
    return sp.splice(spec["pieces"])


def streams(media: Path, more: Path | None) -> list[dict]:
    """Every stream measured: name, kind (genuine, splice), person, and a genuine clip's file or a splice's pieces."""
    import csv

    from realname_tools import eval_injection as ei

    videos = media / "videos"
    out = [{"name": c, "kind": "genuine", "person": PERSON[c], "clip": c} for c in sp.GENUINE]
    if more is not None:
        with open(more / "pad_clips.csv", newline="", encoding="utf-8") as listing:
            for row in csv.DictReader(listing):
                source = Path(row["source"]).name
                if row["label"] == "genuine" and source in sp.GENUINE:
                    out.append({"name": row["file"], "kind": "genuine", "person": PERSON[source], "clip": row["file"], "copy": True})
    design = [(name, pieces) for name, pieces in sp.SPLICES.items()]
    design += [(f"eval-injection {k}: {challenges}", pieces) for k, (pieces, challenges, _) in enumerate(ei.SPLICES)]
    for name, pieces in design:
        out.append({"name": name, "kind": "splice", "person": PERSON[pieces[0][0]],
                    "pieces": [(videos / c, a, b) for c, a, b in pieces]})
    if more is not None:
        for name, (copy, source, ranges) in STILL_SPLICES.items():
            path = more / copy if copy else videos / source
            out.append({"name": name, "kind": "splice", "person": PERSON[source], "pieces": [(path, a, b) for a, b in ranges]})
    return out


def load_features(specs: list[dict], media: Path, more: Path | None, cache: Path) -> dict[str, dict]:
    """Per stream its `features`, its pieces' `lengths` (a splice) and its landmarks (`points`), cached in
    `cache` (a JSON file) and a .npy file beside it per stream."""
    from server.config import load_settings
    from server.models.loader import landmarker_file, new_landmarker

    known = json.loads(cache.read_text()) if cache.exists() else {}
    todo = [s for s in specs if s["name"] not in known]
    if todo:
        settings = load_settings(None)
        landmarker = new_landmarker(landmarker_file(settings.landmarker_model, settings.models_dir))
        for spec in todo:
            print(f"landmarks {spec['name']}", file=sys.stderr, flush=True)
            frames = frames_of(spec, media, more)
            feats, points = features(frames, landmarker)
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.save(_points_file(cache, spec["name"]), points)
            known[spec["name"]] = {"features": feats, "lengths": _lengths(spec, frames) if spec["kind"] == "splice" else None}
            cache.write_text(json.dumps(known))
        landmarker.close()
    for spec in specs:
        known[spec["name"]]["points"] = np.load(_points_file(cache, spec["name"]))
    return known


def _points_file(cache: Path, name: str) -> Path:
    import hashlib

    return cache.parent / f"{cache.stem}-{hashlib.sha1(name.encode()).hexdigest()[:12]}.npy"


def _lengths(spec: dict, frames: list) -> list[int]:
    """The pieces' lengths as decoded (a piece at a clip's end may be shorter than asked)."""
    return [len(sp.piece_frames(path, a, b, (frames[0].shape[1], frames[0].shape[0]))) for path, a, b in spec["pieces"]]


# The design splices cut between two still moments (the rest cut into or out of a movement, or within one).
STILL_DESIGN = {"blink (static head): blink, blink", "d7: blink, blink", "d13: smile, blink", "eval-injection 5: blink,blink",
                "eval-injection 6: blink", *STILL_SPLICES}


def measure(media: Path, more: Path | None, cache: Path) -> dict:
    specs = streams(media, more)
    known = load_features(specs, media, more, cache)
    rows = []
    for spec in specs:
        feats, lengths = known[spec["name"]]["features"], known[spec["name"]]["lengths"]
        cut_frames = [int(c) for c in np.cumsum(lengths)[:-1]] if lengths else []
        for rate in RATES:
            for phase in range(PHASES):
                for r in stream_steps(feats, known[spec["name"]]["points"], rate, phase):
                    r.update(name=spec["name"], kind=spec["kind"], person=spec["person"], rate=rate, phase=phase,
                             still_shot=spec["name"] in STILL_DESIGN, cut=any(r["from"] < c <= r["at"] for c in cut_frames))
                    rows.append(r)
    return {"summary": summarise(rows), "still_cuts": still_cuts(rows)}


def summarise(rows: list[dict]) -> dict:
    """Per measure and group: each genuine person's highest value outside movements (steps with still sides),
    the limit left one person out (MARGIN times the others' highest), the genuine people over theirs, and the
    design cuts over the limit of the people they are not of: the still-shot cuts with still sides, all cuts."""
    genuine = [r for r in rows if r["kind"] == "genuine" and r["still"]]
    people = sorted({r["person"] for r in genuine})
    cuts = [r for r in rows if r["kind"] == "splice" and r["cut"]]
    out = {}
    for key in [f"{m}_{g}" for m in MEASURES for g in (*GROUPS, "any")]:
        top = {p: max(r[key] for r in genuine if r["person"] == p) for p in people}
        limit = {p: MARGIN * max(v for q, v in top.items() if q != p) for p in people}
        overall = MARGIN * max(top.values())
        still = [r for r in cuts if r["still_shot"] and r["still"]]
        out[key] = {
            "genuine_highest_by_person": {p: round(v, 2) for p, v in sorted(top.items(), key=lambda kv: -kv[1])},
            "limit_all": round(overall, 2),
            "genuine_people_over_their_limit": [p for p in people if top[p] > limit[p]],
            "still_shot_cut_steps_found": [sum(1 for r in still if r[key] > limit.get(r["person"], overall)), len(still)],
            "still_shot_cut_steps_highest": round(max(r[key] for r in still), 2) if still else None,
            "cut_steps_with_still_sides_found": [sum(1 for r in cuts if r["still"] and r[key] > limit.get(r["person"], overall)),
                                                 sum(1 for r in cuts if r["still"])],
        }
    return out


def still_cuts(rows: list[dict]) -> dict:
    """Per still-shot design splice, over its cut steps with still sides (every rate and phase): the median and
    highest of each measure."""
    out = {}
    for name in sorted({r["name"] for r in rows if r["still_shot"]}):
        found = [r for r in rows if r["name"] == name and r["cut"] and r["still"]]
        out[name] = {"cut_steps": len(found), "cut_steps_any_sides": sum(1 for r in rows if r["name"] == name and r["cut"])}
        for key in [f"{m}_{g}" for m in MEASURES for g in GROUPS]:
            if found:
                values = [r[key] for r in found]
                out[name][key] = [round(float(np.median(values)), 2), round(max(values), 2)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realname_tools.posecut", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="the pose and geometry steps of genuine clips and design splices")
    m.add_argument("--media", default="../shared/media")
    m.add_argument("--more-genuine", default=None, help="a `python -m server pad-attacks` folder: its genuine copies and the still-shot splices")
    m.add_argument("--cache", default="/tmp/posecut/landmarks.json")
    m.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    result = measure(Path(args.media), Path(args.more_genuine) if args.more_genuine else None, Path(args.cache))
    emit_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
