"""Calibration of `rigid_texture` (server/spoof/texture_rigidity.py): how much a face's texture changes
when it turns, for genuine clips and for mesh-warped puppets of photos (issue 24 item 3).

Each clip goes through the landmarker at the analysis size (every `--every`-th frame); its neutral face
is its first frontal, open-eyed frame (the engine's start condition), and every later frame turned or
nodded MIN_ANGLE_DEG or more from it is compared (`texture_change`). A clip gives one value per turn
(each run of consecutive turned frames, judged as a check would judge it were it its only turn: what
one challenge shows a check; and again cut short at its completion, as a check's last challenge is) and one for the whole clip as a check's tracker would take it (its first
MAX_SAMPLES turned frames).

`calibrate` measures the genuine clips of the media's videos (one face; the screen and phone replays of
real footage count as genuine here: a real head turned in them) and sets the limit leaving each person
out in turn: the lowest turn of the other people, times `--margin`. Puppets (`--puppets PERSON,...`: the
photos of those people, none of them an ID portrait of realname_tools/eval_injection.py, made with
`puppets.mesh_puppet_of` into a temporary folder) are only measured against the limit, never fitted.

    python -m realname_tools.rigidity calibrate [--media ../shared/media] [--puppets angelina_jolie,...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from statistics import median

import numpy as np

# Genuine clips with one face that turns or nods, and who is in them (people are left out as a whole).
GENUINE = {
    "headturn_lr_nod_phone_selfie_young_man_21s.mp4": "tranv",
    "attack_monitor_replay_of_headturn_phone_selfie_21s.mp4": "tranv",
    "attack_phone_replay_selfie_video_young_man_15s.mp4": "young_man_replay",
    "lp_d12_talking_glasses_man_headturns_7s.mp4": "lp_d12",
    "lp_d3_expressions_headtilt_woman_12s.mp4": "lp_d3",
    "talking_lin_manuel_miranda_hamilton_clip_10s.mp4": "miranda",
    "blink_frontal_man_phone_portrait_14s.mp4": "blinkdet",
    "lp_d13_selfie_glasses_man_smile_12s.mp4": "lp_d13",
    "lp_d18_mouth_open_eyes_closed_man_7s.mp4": "lp_d18",
    "lp_d7_winks_blinks_woman_6s.mp4": "lp_d7",
    "lp_d0_smile_greenscreen_asian_man_3s.mp4": "lp_d0",
    "static_webcam_man_real_4s.mp4": "lestari",
}
COMPLETED_HOLD_S = 0.15  # a challenge is completed once its movement is held this long past its threshold
PUPPET_CHALLENGES = ["turn_left,turn_right", "look_up,blink", "turn_right,look_down", "blink,turn_left", "look_down,look_up", "turn_left,look_up"]


def frames(path: Path, every: int, max_s: float = 20.0):
    import av

    from server.liveness.analyzer import analysis_size

    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            t = float(frame.time or 0.0)
            if t > max_s:
                break
            if index % every == 0:
                width, height = analysis_size(frame.width, frame.height)
                yield t, frame.reformat(width=width, height=height, format="rgb24").to_ndarray()


def measure(path: Path, landmarker, every: int) -> dict:
    """The clip's turned frames: (t, angle, change) each, its turns' medians and its check-like value."""
    from server.liveness.signals import frame_signals
    from server.liveness.thresholds import Thresholds
    from server.spoof import texture_rigidity as rig

    th = Thresholds()
    neutral = None
    samples: list[tuple[float, float, float]] = []
    for t, rgb in frames(path, every):
        faces = landmarker.get(rgb)
        if len(faces) != 1:
            continue
        s = frame_signals(t, faces, rgb)
        if s.eyes_closed > rig.MAX_EYES_CLOSED:
            continue
        if neutral is None:
            if abs(s.yaw) <= th.frontal_yaw_deg and abs(s.pitch) <= th.frontal_pitch_deg:
                neutral = rig.neutral_face(rgb, faces[0].points, s.yaw, s.pitch)
            continue
        angle = float(np.hypot(s.yaw - neutral.yaw, s.pitch - neutral.pitch))
        if angle >= rig.MIN_ANGLE_DEG:
            change = rig.texture_change(neutral, rgb, faces[0].points)
            if change is not None:
                samples.append((t, angle, change))
    tracker = rig.RigidityTracker(neutral)  # what a check's tracker keeps of the same frames
    for t, angle, change in samples:
        if len(tracker.samples) < rig.MAX_SAMPLES and (not tracker.samples or t - tracker.samples[-1].t >= rig.SAMPLE_GAP_S):
            tracker.samples.append(rig.RigiditySample(t, angle, change))
    turns, run = [], []
    gap = 2.5 * every / 25.0  # consecutive turned frames
    for sample in samples:
        if run and sample[0] - run[-1][0] > gap:
            turns.append(run)
            run = []
        run.append(sample)
    if run:
        turns.append(run)
    result = tracker.result()
    return {
        "samples": samples,
        "turns": [round(judged.change, 4) for judged in map(judged_turn, turns) if judged is not None],
        # The same turns cut short at their completion, as a check's last challenge ends them.
        "completed_turns": [round(judged.change, 4) for judged in (judged_turn(completed(run)) for run in turns) if judged is not None],
        "check": None if result is None else round(result.change, 4),
        "max_angle_deg": round(max((a for _, a, _ in samples), default=0.0), 1),
    }


def judged_turn(run: list[tuple[float, float, float]]):
    """One turn's value, as a check whose only turn it was would judge it (None: not judged)."""
    from server.spoof import texture_rigidity as rig

    return rig.RigidityTracker(samples=[rig.RigiditySample(t, angle, change) for t, angle, change in run[: rig.MAX_SAMPLES]]).result()


def completed(run: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """A turn's frames up to its completion as a challenge: COMPLETED_HOLD_S after it first reaches
    JUDGED_FROM_DEG (the turn thresholds' order), as when it is the check's last challenge."""
    from server.spoof import texture_rigidity as rig

    reached = next((t for t, angle, _ in run if angle >= rig.JUDGED_FROM_DEG), None)
    return run if reached is None else [s for s in run if s[0] <= reached + COMPLETED_HOLD_S]


def make_puppets(media: Path, persons: list[str], folder: Path) -> list[Path]:
    import cv2  # noqa: F401  (the puppet maker needs it)

    from realname_tools import puppets
    from realname_tools.eval_injection import PORTRAITS
    from server.config import Settings
    from server.models.landmarker import FaceLandmarker
    from server.models.loader import landmarker_file

    settings = Settings()
    matcher = puppets.service_matcher()
    landmarker = FaceLandmarker(landmarker_file(settings.landmarker_model, settings.models_dir)).prepare()
    made = []
    try:
        for person in persons:
            for index, photo in enumerate(sorted((media / "photos" / person).iterdir())):
                if f"{person}/{photo.name}" in PORTRAITS:
                    continue
                challenges = PUPPET_CHALLENGES[(len(made) + index) % len(PUPPET_CHALLENGES)]
                try:
                    clip = puppets.mesh_puppet_of(matcher, landmarker, puppets.read_photo(photo), challenges.split(","), puppets.MeshStyle(seed=len(made) + 1))
                except Exception as error:  # a photo without a usable face
                    print(f"skip {person}/{photo.name}: {error}", file=sys.stderr)
                    continue
                path = folder / f"{person}__{photo.stem}__{challenges.replace(',', '-')}.mp4"
                puppets.write_clip(clip, path)
                made.append(path)
    finally:
        landmarker.close()
    return made


def limits_leaving_out(genuine: dict[str, dict], margin: float) -> dict[str, float]:
    """For each person, the limit set by the others' turns: their lowest, times `margin`."""
    people = {GENUINE[name] for name in genuine}
    out = {}
    for person in sorted(people):
        others = [v for name, m in genuine.items() if GENUINE[name] != person for v in m["turns"] + m["completed_turns"]]
        if others:
            out[person] = round(margin * min(others), 4)
    return out


def calibrate(media: Path, persons: list[str], every: int, margin: float, clips: list[Path]) -> dict:
    from server.config import Settings
    from server.models.landmarker import FaceLandmarker
    from server.models.loader import landmarker_file

    settings = Settings()
    landmarker = FaceLandmarker(landmarker_file(settings.landmarker_model, settings.models_dir)).prepare()
    try:
        genuine = {name: measure(media / "videos" / name, landmarker, every) for name in GENUINE}
        for name, m in genuine.items():
            print(f"genuine {name}: turns {m['turns']} check {m['check']} max angle {m['max_angle_deg']}", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(dir="/tmp", prefix="rigidity-") as scratch:  # never in the repository
            made = make_puppets(media, persons, Path(scratch)) if persons else []
            puppets = {}
            for path in [*made, *clips]:
                puppets[path.name] = measure(path, landmarker, every)
                m = puppets[path.name]
                print(f"puppet {path.name}: turns {m['turns']} check {m['check']} max angle {m['max_angle_deg']}", file=sys.stderr, flush=True)
    finally:
        landmarker.close()
    limits = limits_leaving_out(genuine, margin)
    return {"genuine": genuine, "puppets": puppets, "limits_leaving_out": limits, "margin": margin}


def summary(result: dict, below: float) -> dict:
    genuine_turns = [v for m in result["genuine"].values() for v in m["turns"]]
    puppet_turns = [v for m in result["puppets"].values() for v in m["turns"]]
    genuine_completed = [v for m in result["genuine"].values() for v in m["completed_turns"]]
    puppet_completed = [v for m in result["puppets"].values() for v in m["completed_turns"]]
    puppet_checks = [m["check"] for m in result["puppets"].values() if m["check"] is not None]
    genuine_checks = [m["check"] for m in result["genuine"].values() if m["check"] is not None]
    q = lambda v: {"n": len(v), "min": min(v), "median": round(median(v), 4), "max": max(v)} if v else None  # noqa: E731
    held_out = {}
    for person, limit in result["limits_leaving_out"].items():
        turns = [v for name, m in result["genuine"].items() if GENUINE[name] == person for v in m["turns"] + m["completed_turns"]]
        held_out[person] = {"limit": limit, "turns": len(turns), "flagged": sum(v < limit for v in turns)}
    return {
        "genuine_turns": q(genuine_turns), "genuine_checks": q(genuine_checks),
        "puppet_turns": q(puppet_turns), "puppet_checks": q(puppet_checks),
        "genuine_completed_turns": q(genuine_completed), "puppet_completed_turns": q(puppet_completed),
        "below": below,
        "puppet_checks_flagged": sum(v < below for v in puppet_checks), "puppet_checks_measured": len(puppet_checks),
        "puppets_not_measured": [n for n, m in result["puppets"].items() if m["check"] is None],
        "genuine_checks_flagged": sum(v < below for v in genuine_checks),
        "leaving_one_person_out": held_out,
    }


def main(argv: list[str] | None = None) -> int:
    from server.spoof.texture_rigidity import RIGID_BELOW

    parser = argparse.ArgumentParser(prog="python -m realname_tools.rigidity", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cal = sub.add_parser("calibrate", help="genuine clips and mesh-warped puppets against rigid_texture's measure")
    cal.add_argument("--media", default="../shared/media")
    cal.add_argument("--puppets", default="", help="people (photo folders) to make mesh-warped puppets of, comma-separated")
    cal.add_argument("--clips", nargs="*", default=[], help="more puppet clips, already made (e.g. by `puppets make --mesh`)")
    cal.add_argument("--every", type=int, default=2, help="analyse every n-th frame (2: about what a check analyses)")
    cal.add_argument("--margin", type=float, default=0.75, help="the limit: the lowest genuine turn of the other people, times this")
    cal.add_argument("--json", default=None, help="write every sample here")
    args = parser.parse_args(argv)
    persons = [p for p in args.puppets.split(",") if p]
    result = calibrate(Path(args.media), persons, args.every, args.margin, [Path(c) for c in args.clips])
    if args.json:
        Path(args.json).write_text(json.dumps(result))
    print(json.dumps(summary(result, RIGID_BELOW), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
