"""Splices of real footage, one piece per prompt, and the calibration of `stream_discontinuity` (issue 24
item 3).

An attacker with some footage of the person (a selfie video, a video call) cuts the piece where they turn,
the piece where they blink, and plays each when its prompt comes. `make` concatenates such pieces
(CLIP:START:END, seconds; each resized to the first piece's frame), writing an H.264 clip (to /tmp:
never commit generated media). `calibrate` measures the continuity steps (server/spoof/continuity.py) of
the analyser on the shared genuine clips and on splices generated from them, and lists the cuts found;
with `--fade`, the splices are cross-faded and each clip's lowest fade residual with a cut is measured
(the fade limits' calibration, genuine clips only); with `--vp8-kbps`, every clip as the server receives
it from the live page (20 frames a second through VP8 at that bitrate).

    python -m realname_tools.splices make /tmp/splice.mp4 CLIP:0:2 CLIP:7.5:10.5 CLIP:2.3:5.5 [--fade 3 --fade-style moving]
    python -m realname_tools.splices calibrate [--media ../shared/media] [--windows] [--fade 4 --fade-style moving]
        [--more-genuine /tmp/pad-attacks] [--vp8-kbps 600]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from realname_tools.output import emit_json

FPS = 25.0

# Continuous footage of one person each. Left out: the Hamilton clip (a broadcast edited from several
# shots: real cuts) and the clips without a face.
GENUINE = [
    "blink_frontal_man_phone_portrait_14s.mp4",
    "headturn_lr_nod_phone_selfie_young_man_21s.mp4",
    "static_webcam_man_real_4s.mp4",
    "lp_d0_smile_greenscreen_asian_man_3s.mp4",
    "lp_d3_expressions_headtilt_woman_12s.mp4",
    "lp_d7_winks_blinks_woman_6s.mp4",
    "lp_d12_talking_glasses_man_headturns_7s.mp4",
    "lp_d13_selfie_glasses_man_smile_12s.mp4",
    "lp_d18_mouth_open_eyes_closed_man_7s.mp4",
    # Screen replays: attacks, but continuous footage (PAD's business, not this signal's).
    "attack_monitor_replay_of_headturn_phone_selfie_21s.mp4",
    "attack_phone_replay_selfie_video_young_man_15s.mp4",
]

# What each genuine clip is asked when its prompts' reaction windows are measured (`--windows`): the
# challenges it performs (one it never performs leaves its window open to the check's end).
GENUINE_CHALLENGES = {
    "blink_frontal_man_phone_portrait_14s.mp4": "blink,blink,blink",
    "headturn_lr_nod_phone_selfie_young_man_21s.mp4": "turn_left,turn_right,look_down,look_up",
    "static_webcam_man_real_4s.mp4": "blink",
    "lp_d0_smile_greenscreen_asian_man_3s.mp4": "smile",
    "lp_d3_expressions_headtilt_woman_12s.mp4": "turn_left,turn_right",
    "lp_d7_winks_blinks_woman_6s.mp4": "blink",
    "lp_d12_talking_glasses_man_headturns_7s.mp4": "turn_left,turn_right,turn_left",
    "lp_d13_selfie_glasses_man_smile_12s.mp4": "smile,blink",
    "lp_d18_mouth_open_eyes_closed_man_7s.mp4": "open_mouth",
    "attack_monitor_replay_of_headturn_phone_selfie_21s.mp4": "turn_left,turn_right",
    "attack_phone_replay_selfie_video_young_man_15s.mp4": "blink",
}

HEADTURN = "headturn_lr_nod_phone_selfie_young_man_21s.mp4"
MONITOR = "attack_monitor_replay_of_headturn_phone_selfie_21s.mp4"
D12 = "lp_d12_talking_glasses_man_headturns_7s.mp4"
D3 = "lp_d3_expressions_headtilt_woman_12s.mp4"
D13 = "lp_d13_selfie_glasses_man_smile_12s.mp4"
BLINK = "blink_frontal_man_phone_portrait_14s.mp4"
D7 = "lp_d7_winks_blinks_woman_6s.mp4"

# One piece per prompt: a neutral start, then each challenge's movement (see ../shared/media/SOURCES.md).
SPLICES: dict[str, list[tuple[str, float, float]]] = {
    "headturn: left, right, down": [(HEADTURN, 0, 2), (HEADTURN, 2.3, 5.5), (HEADTURN, 7.5, 10.5), (HEADTURN, 11.5, 14)],
    "headturn: right, left, up": [(HEADTURN, 0.5, 2), (HEADTURN, 7.5, 10.5), (HEADTURN, 2.3, 5.5), (HEADTURN, 14.5, 16.5)],
    "headturn: down, left": [(HEADTURN, 16.5, 19), (HEADTURN, 11.5, 14), (HEADTURN, 2.3, 5.5)],
    "headturn + its screen replay: left, right": [(HEADTURN, 0, 2), (MONITOR, 2.5, 5.8), (HEADTURN, 7.5, 10.5)],
    "d12: right, left, right": [(D12, 0, 1.4), (D12, 1.4, 2.6), (D12, 3.0, 4.2), (D12, 6.0, 7.2)],
    "d12: left, right": [(D12, 4.5, 5.8), (D12, 3.0, 4.2), (D12, 1.4, 2.6)],
    "d3: turns": [(D3, 2.0, 4.0), (D3, 6.5, 7.5), (D3, 5.0, 6.2), (D3, 8.5, 9.8)],
    "d13: smile, blink": [(D13, 0, 2), (D13, 6.0, 7.5), (D13, 3.0, 4.0), (D13, 10.0, 11.5)],
    "blink (static head): blink, blink": [(BLINK, 0, 1.5), (BLINK, 9.0, 9.8), (BLINK, 3.2, 4.0), (BLINK, 1.4, 2.2)],
    "d7: blink, blink": [(D7, 0, 1.0), (D7, 2.1, 3.0), (D7, 0.6, 1.2), (D7, 4.5, 5.9)],
}


SPLICE_CHALLENGES = {
    "headturn: left, right, down": "turn_left,turn_right,look_down", "headturn: right, left, up": "turn_right,turn_left,look_up",
    "headturn: down, left": "look_down,turn_left", "headturn + its screen replay: left, right": "turn_left,turn_right",
    "d12: right, left, right": "turn_right,turn_left,turn_right", "d12: left, right": "turn_left,turn_right", "d3: turns": "turn_left,turn_right",
    "d13: smile, blink": "smile,blink", "blink (static head): blink, blink": "blink,blink", "d7: blink, blink": "blink,blink",
}


def piece_frames(path: Path, start: float, end: float, size: tuple[int, int] | None) -> list[np.ndarray]:
    """BGR frames of [start, end) at FPS, resized to `size` (width, height) when given."""
    import av
    import cv2

    wanted = list(np.arange(start, end, 1 / FPS))
    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            t = float(frame.time or 0.0)
            while wanted and wanted[0] <= t:
                wanted.pop(0)
                image = frame.to_ndarray(format="bgr24")
                out.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA) if size and image.shape[1::-1] != size else image)
            if not wanted:
                break
    return out


FADE_STYLES = ("still", "moving", "both")


def splice(pieces: list[tuple[Path, float, float]], fade: int = 0, style: str = "still", marks: list[int] | None = None) -> list[np.ndarray]:
    """The pieces in turn; with `fade`, each cut cross-faded over that many frames, the linear blends
    (weights 1/(fade+1) ... fade/(fade+1)) of: `still`, the last frame of one piece and the first of the
    next (inserted between them); `moving`, the last frame of one piece and the next piece's first frames,
    which go on moving (the fade replaces them); `both`, an editor's dissolve: the last `fade` frames of one
    piece and the first of the next, overlapped (the fade replaces both). `marks`: gets the index of each
    cut's first frame not of the piece before (its fade's first)."""
    if style not in FADE_STYLES:
        raise ValueError(f"fade style {style!r}: one of {', '.join(FADE_STYLES)}")
    frames: list[np.ndarray] = []
    for clip, start, end in pieces:
        size = (frames[0].shape[1], frames[0].shape[0]) if frames else None
        piece = piece_frames(clip, start, end, size)
        if frames and piece:
            n = min(fade, len(piece) - 1, len(frames) - 1) if style != "still" else fade
            if n > 0:
                weights = [j / (n + 1) for j in range(1, n + 1)]
                if style == "still":
                    outgoing, incoming = [frames[-1]] * n, [piece[0]] * n
                elif style == "moving":
                    outgoing, incoming, piece = [frames[-1]] * n, piece[:n], piece[n:]
                else:
                    outgoing, incoming, frames, piece = frames[-n:], piece[:n], frames[:-n], piece[n:]
                if marks is not None:
                    marks.append(len(frames))
                frames += [blend(a, b, w) for a, b, w in zip(outgoing, incoming, weights, strict=True)]
            elif marks is not None:
                marks.append(len(frames))
        frames += piece
    return frames


def blend(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) a + weight b, as 8-bit pixels."""
    mixed = (1.0 - weight) * a.astype(np.float32) + weight * b.astype(np.float32)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def pictures_of(path: Path, vp8_kbps: int = 0) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Every frame's time, thumbnail and finer thumbnail (server/spoof/continuity.py `luma_thumbnails`);
    with `vp8_kbps`, of the frames the live page sends (at most SEND_FPS a second), as the server receives
    them through VP8 at that bitrate (realname_tools/client.py `Vp8Link`)."""
    import av

    from realname_tools.client import Vp8Link, sent_at
    from server.liveness.rates import SEND_FPS
    from server.spoof.continuity import luma_thumbnails

    link = Vp8Link(vp8_kbps * 1000) if vp8_kbps else None
    out = []
    with av.open(str(path)) as container:
        fps = float(container.streams.video[0].average_rate or FPS)
        for index, frame in enumerate(container.decode(video=0)):
            t = float(frame.time) if frame.time is not None else index / FPS
            if link is not None:
                if not sent_at(index, fps, SEND_FPS):
                    continue
                frame = link.received(frame, t)
                if frame is None:
                    continue
            out.append((t, *luma_thumbnails(frame)))
    return out


def steps_from(pictures, fade_residual: float | None = None, even_residual: float | None = None):
    """The continuity steps of a clip's pictures, fed as a live check and a replay feed them (the clip's
    clock for both); `fade_residual`, `even_residual`: the tracker's, if not its own (-1: no cross-fade
    found; a `fade_residual` of -1 turns both off unless `even_residual` is given)."""
    from server.spoof.continuity import ContinuityTracker

    limits = {}
    if fade_residual is not None:
        limits["fade_residual"] = fade_residual
        if fade_residual < 0 and even_residual is None:
            even_residual = -1.0
    if even_residual is not None:
        limits["even_residual"] = even_residual
    tracker = ContinuityTracker(**limits)
    for t, thumb, fine in pictures:
        tracker.add(t, thumb, t, fine)
    return tracker.steps


def steps_of(path: Path):
    """The continuity steps of a whole clip, every frame fed as a live check and a replay feed them."""
    return steps_from(pictures_of(path))


def lowest_fade_residual(pictures, limits, even: bool = False) -> float | None:
    """The lowest `fade_residual` (0.01 to 0.5; the even runs' limit off) at which the clip has a cut that
    it has not without cross-fades (None: none): for a genuine clip how near it comes to a false fade, for
    a faded splice how far under the limit its fades are. `even`: the lowest `even_residual` instead (the
    fade_residual as set), against the cuts with fade_residual alone."""
    from server.spoof.continuity import cuts

    plain = cuts(steps_from(pictures, None, -1.0) if even else steps_from(pictures, -1.0), limits)
    for value in (round(0.01 * i, 2) for i in range(1, 51)):
        steps = steps_from(pictures, None, value) if even else steps_from(pictures, value, -1.0)
        if cuts(steps, limits) != plain:
            return value
    return None


def steps_and_windows(path: Path, challenges: str, landmarker: Path):
    """The continuity steps of a clip judged as a check (to the check's end), and each prompt's reaction
    window (from the prompt to its movement's onset), on the clip's clock."""
    from server.liveness.challenges import parse_challenges
    from server.liveness.replay import replay_video

    result = replay_video(path, parse_challenges(challenges), landmarker).liveness
    return [s for s in steps_of(path) if s.t <= result.finished_at], result.challenge_spans(to_onset=True)


def highest_prompted_times(steps, windows, limits) -> float | None:
    """The highest `prompted_times` at which a step under the floor in a reaction window is a cut (None:
    none at 1): for a genuine clip how near it comes, for a splice how far its small cut stands out."""
    import dataclasses

    from server.spoof.continuity import cuts

    found = [v for v in (round(1 + 0.1 * i, 1) for i in range(191)) if cuts(steps, dataclasses.replace(limits, prompted_times=v), windows)
             != cuts(steps, limits)]
    return found[-1] if found else None


def highest_limits(steps, limits) -> dict:
    """The highest `times`, `isolation`, `quiet_times`, `evidence` and `jolt` (each alone, the other limits as set)
    at which the stream still has a cut: for a genuine clip how near it comes to a false cut, for a splice
    how far its cuts stand out."""
    import dataclasses

    from server.spoof.continuity import cuts

    grid = [round(1 + 0.25 * i, 2) for i in range(77)]  # 1 to 20
    grids = {"times": grid, "isolation": grid, "quiet_times": grid, "evidence": [10.0 * i for i in range(1, 101)], "jolt": grid}  # evidence: 10 to 1000
    found = {name: [v for v in values if cuts(steps, dataclasses.replace(limits, **{name: v}))] for name, values in grids.items()}
    return {name: (values[-1] if values else None) for name, values in found.items()}


def describe(name: str, steps, limits, pictures=None) -> dict:
    """`pictures` (`pictures_of`): also the lowest fade residual with a cut, and the cuts without fades."""
    from server.spoof.continuity import cuts

    changes = sorted((s.change for s in steps), reverse=True)
    row = {
        "clip": name,
        "steps": len(steps),
        "cuts_at_s": [round(t, 2) for t in cuts(steps, limits)],
        "highest_limits_with_a_cut": highest_limits(steps, limits),
        "change": {"median": round(float(np.median(changes)), 2) if changes else None, "max": [round(v, 1) for v in changes[:3]]},
        "fades_at_s": [[round(s.t, 2), s.fade_steps, round(s.fade, 1)] for s in steps if s.fade > 0],
    }
    if pictures is not None:
        row["cuts_without_fades_at_s"] = [round(t, 2) for t in cuts(steps_from(pictures, -1.0), limits)]
        row["lowest_fade_residual_with_a_cut"] = lowest_fade_residual(pictures, limits)
        row["lowest_even_fade_residual_with_a_cut"] = lowest_fade_residual(pictures, limits, even=True)
    return row


def calibrate(media: Path, windows: bool = False, fade: int = 0, style: str = "still", more_genuine: Path | None = None,
              vp8_kbps: int = 0) -> dict:
    """`windows`: each clip judged as a check too (the landmarker's cost), for its prompts' reaction
    windows. `fade`, `style`: the splices cross-faded (`splice`), and each clip's lowest fade residuals
    with a cut measured; `more_genuine`: a folder of `python -m server pad-attacks`, whose genuine clips
    (its pad_clips.csv) are measured too; `vp8_kbps`: the steps of every clip as the live page sends it
    (`pictures_of`; the reaction windows are the clip's own)."""
    import csv

    from realname_tools.puppets import write_clip
    from server.spoof.continuity import CutLimits

    limits = CutLimits()
    videos = media / "videos"
    landmarker = None
    if windows:
        from server.config import load_settings
        from server.models.loader import landmarker_file

        settings = load_settings(None)
        landmarker = landmarker_file(settings.landmarker_model, settings.models_dir)

    def measured(name: str, path: Path, challenges: str | None) -> dict:
        pictures = pictures_of(path, vp8_kbps)
        row = describe(name, steps_from(pictures), limits, pictures if fade else None)
        if landmarker is not None and challenges:
            steps, found = steps_and_windows(path, challenges, landmarker)
            row["reaction_windows"] = [[round(a, 2), round(b, 2)] for a, b in found]
            row["highest_prompted_times_with_a_cut"] = highest_prompted_times(steps, found, limits)
        return row

    genuine = []
    for clip in GENUINE:
        print(f"genuine {clip}", file=sys.stderr)
        genuine.append(measured(clip, videos / clip, GENUINE_CHALLENGES[clip]))
    if more_genuine is not None:
        with open(more_genuine / "pad_clips.csv", newline="", encoding="utf-8") as listing:
            extra = [row["file"] for row in csv.DictReader(listing) if row["label"] == "genuine" and Path(row["source"]).name in GENUINE]
        for clip in extra:
            print(f"genuine {clip}", file=sys.stderr)
            genuine.append(measured(clip, more_genuine / clip, None))
    splices = []
    for name, pieces in SPLICES.items():
        print(f"splice {name}", file=sys.stderr)
        marks: list[int] = []
        with tempfile.NamedTemporaryFile(suffix=".mp4", dir="/tmp") as out:  # never in the repository
            write_clip(splice([(videos / c, a, b) for c, a, b in pieces], fade, style, marks), Path(out.name))
            row = measured(name, Path(out.name), SPLICE_CHALLENGES[name])
        row["cuts_made_at_s"] = [round(m / FPS, 2) for m in marks]
        splices.append(row)
    return {"genuine": genuine, "splices": splices}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realname_tools.splices", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", help="concatenate pieces of footage into one clip")
    make.add_argument("out")
    make.add_argument("pieces", nargs="+", help="CLIP:START:END (seconds)")
    make.add_argument("--fade", type=int, default=0, help="cross-fade each cut over this many frames")
    make.add_argument("--fade-style", choices=FADE_STYLES, default="still", help="what is blended (see `splice`)")
    cal = sub.add_parser("calibrate", help="continuity steps and cuts of genuine clips and generated splices")
    cal.add_argument("--media", default="../shared/media")
    cal.add_argument("--json", default=None, help="write the measurements here")
    cal.add_argument("--windows", action="store_true", help="judge each clip as a check too: its prompts' reaction windows and the small cuts in them")
    cal.add_argument("--fade", type=int, default=0, help="cross-fade the splices over this many frames, and measure each clip's lowest fade residual with a cut")
    cal.add_argument("--fade-style", choices=FADE_STYLES, default="still")
    cal.add_argument("--more-genuine", default=None, help="a `python -m server pad-attacks` folder: its genuine clips (of GENUINE) too")
    cal.add_argument("--vp8-kbps", type=int, default=0, help="every clip as the live page sends it: 20 frames a second through VP8 at this bitrate")
    args = parser.parse_args(argv)
    if args.command == "make":
        from realname_tools.puppets import write_clip

        pieces = []
        for piece in args.pieces:
            clip, start, end = piece.rsplit(":", 2)
            pieces.append((Path(clip), float(start), float(end)))
        write_clip(splice(pieces, args.fade, args.fade_style), Path(args.out))
        print(args.out)
        return 0
    result = calibrate(Path(args.media), args.windows, args.fade, args.fade_style, Path(args.more_genuine) if args.more_genuine else None,
                       args.vp8_kbps)
    emit_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
