"""The flatness cue (server/spoof/flatness.py) on single head-movement checks, as a live check judges them.

`eval-pad` fits `flat_below` on each clip's deformation over all its frames. A live check measures fewer:
its frames from the stream's start to its last challenge's completion, analysed at the step rates of
server/liveness/rates.py (a head movement awaited at 6 fps, one under way at 12), fewer on a loaded
server. A check of head movements only (no blink, smile or open mouth) is the one the cue judges.

Every frame of each clip is landmarked once (through VP8 at `--vp8-kbps` first: what the server receives;
cached under --cache). Then, for each of turn_left, turn_right, look_up and look_down, the engine is
replayed as the live connection paces it: the frames the page sends (SEND_FPS, from each of PHASES
sampling phases), each step at its rate (`frame_due`; the change watch, which adds frames only in the
neutral stretch and a blink, is left out), the stream starting every `--start-every` seconds into the
clip, and the FlatnessTracker fed the analysed frames with one face up to the check's end, as the live
analyzer feeds it (`rates`). `loaded`: the same with every second frame the rates would analyse dropped;
`file`: every frame of the file, as `python -m server liveness` analyses it. A passed check belongs to one
movement of the clip (grouped by its completion time); every check of each movement is kept.

Each check is decided by the shipped rule (PadThresholds.decide) with its clip's score, noise and detail
from the calibration's `measured.clips` (the clip through VP8 at 600 kbps) and the check's deformation.

    python -m realname_tools.flat_checks measure --out /tmp/flat/raw.json [--vp8-kbps 600] [--on-time 1.0]
    python -m realname_tools.flat_checks report /tmp/flat/raw.json [/tmp/flat/vp8.json ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import pickle
import sys
from pathlib import Path
from typing import Any

HEAD_MOVEMENTS = ("turn_left", "turn_right", "look_up", "look_down")
PHASES = 4  # the sent stream starts at frame 0, 1, 2 or 3 of the clip (as bench/step_rates.py)
MODES = ("file", "rates", "loaded")  # every frame of the file (as `python -m server liveness` analyses it), the step rates, half of those


def clips(shared_csv: Path, shared_root: Path, persons_csv: Path, generated_csv: Path, generated_root: Path, extra: list[str] = ()) -> list[dict[str, str]]:
    """The genuine clips and the prints (screen replays replay a deforming face: not this cue's attacks)."""
    persons = {r["file"]: r["person"] for r in csv.DictReader(persons_csv.open())}
    out = [{"file": r["file"], "path": str(shared_root / r["file"]), "label": "genuine", "recipe": "filmed", "person": persons[r["file"]]}
           for r in csv.DictReader(shared_csv.open()) if r["label"] == "genuine"]
    out += [{"file": r["file"], "path": str(generated_root / r["file"]), "label": r["label"], "recipe": r["recipe"], "person": r["person"]}
            for r in csv.DictReader(generated_csv.open()) if r["label"] == "genuine" or r["attack_type"] == "print"]
    return out + [{"file": Path(path).name, "path": path, "label": "genuine", "recipe": "extra", "person": person}
                  for path, _, person in (e.rpartition(":") for e in extra)]


def clip_frames(path: Path, vp8_kbps: int, landmarker) -> tuple[list[tuple[Any, Any]], float]:
    """(FrameSignals, shape or None) of every frame of the clip (through VP8 first, if asked), and its frame rate."""
    import av

    from server.liveness.analyzer import frame_to_rgb
    from server.liveness.signals import frame_signals
    from server.spoof.flatness import shape_of

    from .client import Vp8Link

    link = Vp8Link(vp8_kbps * 1000) if vp8_kbps else None
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 30)
        for index, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else index / fps
            if link is not None:
                frame = link.received(frame, t)
                if frame is None:
                    continue
            rgb = frame_to_rgb(frame)
            faces = landmarker.get(rgb)
            shape = shape_of(faces[0].points, rgb.shape[1], rgb.shape[0]) if len(faces) == 1 else None
            out.append((frame_signals(t, faces, rgb), shape))
    return out, fps


def streams(frames: list[tuple[Any, Any]], fps: float, mode: str) -> list[list[tuple[Any, Any]]]:
    """The streams a check may receive of the clip: every frame of the file (`file`), or what the page
    sends (SEND_FPS) from each sampling phase."""
    from server.liveness.rates import SEND_FPS

    if mode == "file" or fps <= SEND_FPS:
        return [frames]
    return [[frames[p + int(i * fps / SEND_FPS)] for i in range(int((len(frames) - p) * SEND_FPS / fps))] for p in range(PHASES)]


def replay_check(frames: list[tuple[Any, Any]], challenge: str, mode: str = "rates") -> dict[str, Any] | None:
    """One check of `challenge` on the frames, paced as `mode` says: its end and deformation, or None
    when it did not pass."""
    from server.liveness.analyzer import frame_due
    from server.liveness.challenges import parse_challenges
    from server.liveness.engine import LivenessEngine
    from server.spoof.flatness import FlatnessTracker, deformation_for_rule

    engine = LivenessEngine(parse_challenges(challenge))
    tracker = FlatnessTracker()
    last_t, dropped, analysed = None, False, 0
    for s, shape in frames:
        if mode != "file" and not frame_due(s.t, last_t, engine.needed_fps()):
            continue
        last_t = s.t
        if mode == "loaded":
            dropped = not dropped
            if dropped:
                continue
        analysed += 1
        verdict = engine.update(s)
        if shape is not None and tracker.due(s.t):
            tracker.add(s.t, shape)
        if verdict.result is not None:
            break
    result = engine.result
    if result is None or not result.passed:
        return None
    record = result.challenges[-1]
    return {"start": round(frames[0][0].t, 3), "asked_at": round(record.asked_at, 3), "completed_at": round(record.completed_at, 3),
            "analysed": analysed, "tracked": len(tracker.values), "deformation": deformation_for_rule(tracker.deformation, result.challenges)}


def movement_checks(frames: list[tuple[Any, Any]], fps: float, challenge: str, mode: str, start_every: float) -> list[dict[str, Any]]:
    """Per movement of the clip that passes `challenge` (grouped by completion): every check of it (each
    stream start and sampling phase), its shortest, longest and least deformed."""
    movements: dict[float, list[dict[str, Any]]] = {}
    for stream in streams(frames, fps, mode):
        if not stream:
            continue
        start, end = stream[0][0].t, stream[-1][0].t
        while start < end - 1.0:
            check = replay_check([f for f in stream if f[0].t >= start], challenge, mode)
            if check is not None and check["deformation"] is not None:
                key = next((k for k in movements if abs(k - check["completed_at"]) <= 0.4), check["completed_at"])
                movements.setdefault(key, []).append(check)
            start += start_every
    return [{"completed_at": k, "shortest": max(v, key=lambda c: c["start"]), "longest": min(v, key=lambda c: c["start"]),
             "lowest": min(v, key=lambda c: c["deformation"]), "all": v}
            for k, v in sorted(movements.items())]


def print_windows(frames: list[tuple[Any, Any]], fps: float, start_every: float, max_s: float = 8.0, mode: str = "rates") -> dict[int, float]:
    """A print passes no head movement here (its sheet tilts less than a turn), so it is judged as a check
    that ended at any moment: the engine awaiting a turn from each stream start (the step rates pacing its
    frames), the tracker's deformation after each analysed frame. The highest per number of frames tracked."""
    from server.liveness.analyzer import frame_due
    from server.liveness.challenges import parse_challenges
    from server.liveness.engine import LivenessEngine
    from server.spoof.flatness import FlatnessTracker

    highest: dict[int, float] = {}
    for stream in streams(frames, fps, mode):
        start = stream[0][0].t if stream else 0.0
        while stream and start < stream[-1][0].t - 1.0:
            engine, tracker, last_t = LivenessEngine(parse_challenges("turn_left")), FlatnessTracker(), None
            for s, shape in stream:
                if s.t < start or (mode != "file" and not frame_due(s.t, last_t, engine.needed_fps())):
                    continue
                if s.t - start > max_s:
                    break
                last_t = s.t
                done = engine.update(s).result is not None
                if shape is not None and tracker.due(s.t):
                    tracker.add(s.t, shape)
                    if tracker.deformation is not None:
                        k = len(tracker.values)
                        highest[k] = max(highest.get(k, 0.0), tracker.deformation)
                if done:
                    break
            start += start_every
    return dict(sorted(highest.items()))


def measure(clip_list: list[dict[str, str]], vp8_kbps: int, cache: Path, start_every: float) -> list[dict[str, Any]]:
    from server.models.loader import landmarker_file, new_landmarker

    cache.mkdir(parents=True, exist_ok=True)
    landmarker = None
    out = []
    try:
        for clip in clip_list:
            stored = cache / f"{clip['file']}.{vp8_kbps}.pkl"
            if stored.exists():
                frames, fps = pickle.loads(stored.read_bytes())
            else:
                landmarker = landmarker or new_landmarker(landmarker_file())
                frames, fps = clip_frames(Path(clip["path"]), vp8_kbps, landmarker)
                stored.write_bytes(pickle.dumps((frames, fps)))
            row = {**clip, "checks": {mode: {c: movement_checks(frames, fps, c, mode, start_every) for c in HEAD_MOVEMENTS} for mode in MODES}}
            if clip["label"] == "attack":
                row["windows"] = print_windows(frames, fps, start_every)
            out.append(row)
            found = {c: [(round(m["lowest"]["deformation"], 4), len(m["all"])) for m in ms] for c, ms in row["checks"]["rates"].items() if ms}
            print(f"{clip['label']} {clip['file']}: {found}", file=sys.stderr, flush=True)
    finally:
        if landmarker is not None:
            landmarker.close()
    return out


BUCKETS = ((2, 4), (5, 9), (10, 19), (20, 10_000))  # frames tracked by the check


def genuine_checks(rows: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """Every passed genuine check of every movement (each stream start and phase)."""
    return [{"file": r["file"], "person": r["person"], "challenge": c, "movement": m["completed_at"], **check}
            for r in rows if r["label"] == "genuine" for c, ms in r["checks"][mode].items() for m in ms for check in m["all"]]


def passes_on_score(scored: dict[str, Any] | None) -> bool:
    """Whether the shipped rule passes the clip were it not flat (its score, noise and detail)."""
    from server.spoof.calibration import load_thresholds
    from server.spoof.pad import PadVerdict

    return scored is not None and load_thresholds().decide(scored["score"], None, scored.get("face_noise"), scored.get("face_detail")) == PadVerdict.PASS


def fit_flat_below(genuine: list[float], prints: list[float], step: float = 0.05) -> float:
    """pad_crossval.MarginRule.flat_below: halfway (geometric) between the most deformed print and the least
    deformed genuine value, or just below that genuine value when they overlap."""
    if not prints or not genuine:
        return 0.0
    a, g = max(prints), min(genuine)
    return round(math.sqrt(a * g), 4) if a < g else round(g * math.exp(-step), 4)


def summarise(rows: list[dict[str, Any]], scored: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from server.spoof.calibration import load_thresholds

    flat = load_thresholds().flat_below
    prints = [r for r in rows if r["label"] == "attack"]
    live_prints = [r for r in prints if passes_on_score(scored.get(r["file"]))]
    out: dict[str, Any] = {"flat_below": flat, "prints": len(prints), "prints_passing_a_head_movement": {
        mode: sorted({r["file"] for r in prints for ms in r["checks"][mode].values() if ms}) for mode in MODES},
        "prints_the_score_passes": [r["file"] for r in live_prints]}
    for mode in MODES:
        checks = genuine_checks(rows, mode)
        movements: dict[tuple, float] = {}
        for c in checks:
            key = (c["file"], c["challenge"], c["movement"])
            movements[key] = min(movements.get(key, 1e9), c["deformation"])
        by_bucket = {}
        for lo, hi in BUCKETS:
            g = [c["deformation"] for c in checks if lo <= c["tracked"] <= hi]
            w = [v for r in prints for k, v in r.get("windows", {}).items() if lo <= int(k) <= hi]
            wl = [v for r in live_prints for k, v in r.get("windows", {}).items() if lo <= int(k) <= hi]
            by_bucket[f"{lo}-{hi}"] = {"genuine_checks": len(g), "genuine_under": sum(v < flat for v in g),
                                       "genuine_lowest": round(min(g), 4) if g else None,
                                       "prints_highest": round(max(w), 4) if w else None, "score_passed_prints_highest": round(max(wl), 4) if wl else None}
        # Leave one person out: flat_below fitted on the other people's genuine checks and prints (each print's
        # highest window and its whole clip's deformation, as the calibration measured it).
        persons = sorted({c["person"] for c in checks})
        print_values = {r["file"]: [*map(float, r.get("windows", {}).values()), *([scored[r["file"]]["deformation"]] if r["file"] in scored else [])]
                        for r in prints}
        folds = {p: fit_flat_below([c["deformation"] for c in checks if c["person"] != p],
                                   [v for r in prints if r["person"] != p for v in print_values[r["file"]]]) for p in persons}
        out[mode] = {
            "genuine_checks": len(checks), "genuine_under": sum(c["deformation"] < flat for c in checks),
            "genuine_movements": len(movements), "movements_with_a_check_under": sum(v < flat for v in movements.values()),
            "movements_lowest": sorted(f"{v:.4f} {k[0]} {k[1]}@{k[2]}" for k, v in movements.items() if v < 2 * flat),
            "by_frames_tracked": by_bucket,
            "refit_all": fit_flat_below([c["deformation"] for c in checks], [v for vs in print_values.values() for v in vs]),
            "refit_leaving_one_person_out": {
                "folds": folds,
                "genuine_under_fold": sum(c["deformation"] < folds[c["person"]] for c in checks),
                "score_passed_prints_over_fold": sorted(r["file"] for r in live_prints if r["person"] in folds
                                                        and max(print_values[r["file"]]) >= folds[r["person"]]),
            },
        }
    return out


def scored_clips(calibration: Path) -> dict[str, dict[str, Any]]:
    return {c["file"]: c for c in json.loads(calibration.read_text())["measured"]["clips"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realname_tools.flat_checks", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="every clip's single head-movement checks and their deformation")
    m.add_argument("--shared-csv", default="../shared/media/pad_clips.csv")
    m.add_argument("--shared-root", default="../shared/media/videos")
    m.add_argument("--persons", default="realname_tools/data/pad_persons.csv")
    m.add_argument("--generated-csv", default="/tmp/pad-attacks/pad_clips.csv")
    m.add_argument("--generated-root", default="/tmp/pad-attacks")
    m.add_argument("--genuine", nargs="*", default=[], help="more genuine clips, PATH:PERSON (e.g. the e2e over-rotation camera)")
    m.add_argument("--only", nargs="*", default=None, help="measure only these clips (file names)")
    m.add_argument("--vp8-kbps", type=int, default=0)
    m.add_argument("--start-every", type=float, default=0.5, help="seconds between the stream starts tried in each clip")
    m.add_argument("--cache", default="/tmp/flat-checks-cache")
    m.add_argument("--on-time", type=float, default=None,
                   help="the tracker's flatness.ON_TIME instead of the shipped one (1.0: as before 7 December 2026)")
    m.add_argument("--out", required=True)
    r = sub.add_parser("report", help="separation, shipped verdicts and a leave-one-person-out refit per measured set")
    r.add_argument("measured", nargs="+")
    r.add_argument("--calibration", default="server/spoof/calibration/minifasnet-ensemble.json")
    args = parser.parse_args(argv)
    if args.command == "measure":
        if args.on_time is not None:
            from server.spoof import flatness

            flatness.ON_TIME = args.on_time
        clip_list = clips(Path(args.shared_csv), Path(args.shared_root), Path(args.persons), Path(args.generated_csv), Path(args.generated_root), args.genuine)
        if args.only is not None:
            clip_list = [c for c in clip_list if c["file"] in args.only]
        rows = measure(clip_list, args.vp8_kbps, Path(args.cache), args.start_every)
        Path(args.out).write_text(json.dumps({"vp8_kbps": args.vp8_kbps, "start_every": args.start_every, "on_time": args.on_time, "clips": rows}))
        return 0
    scored = scored_clips(Path(args.calibration))
    print(json.dumps({name: summarise(json.loads(Path(name).read_text())["clips"], scored) for name in args.measured}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
