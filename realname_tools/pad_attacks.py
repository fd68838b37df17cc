"""`python -m server pad-attacks`: more presentation attacks, and harder genuine clips, to measure PAD on.

From the shared media (never copied into the repository; the output goes to a folder outside it):
- prints of each person (a frame of their genuine clip, or a portrait photo) on a sheet that tilts, bends
  and shakes under changing light, and the same print held close to the camera and far from it;
- screen replays of each genuine clip on a phone and on a monitor: bezel, sub-pixel moire, glare, the
  screen's own gamma, black level and tint, a hand that is not still;
- each genuine clip degraded as honest customers' webcams and links degrade it: defocus, a dim room
  (gain noise), a low-resolution sensor, and heavy compression.
Every clip is labelled in `pad_clips.csv` beside the files (file, label, attack_type, person, source,
recipe), in the format `eval-pad --clips` reads; a clip's person is the person whose face it shows.
Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import pad_scenes as sc

REPO = Path(__file__).resolve().parents[1]
PERSONS_CSV = Path(__file__).parent / "data" / "pad_persons.csv"
FPS = 15
# Portraits of people with no genuine clip: printed attacks only (their own folds in cross-validation).
PORTRAITS = (
    "george_clooney/deepface_img38.jpg", "jennifer_aniston/deepface_img3.jpg", "matt_damon/deepface_img32.jpg",
    "sundar_pichai/deepface_img25.jpg", "mark_zuckerberg/deepface_img13.jpg", "angelina_jolie/deepface_img10.jpg",
    "scarlett_johansson/deepface_img47.jpg", "leonardo_dicaprio/deepface_img34.jpg",
)
ATTACK_RECIPES = ("print_tilt_bend_shake", "print_close", "print_far", "phone_replay", "monitor_replay")
GENUINE_RECIPES = ("defocus", "low_light", "low_resolution", "compressed")
# Each made with its own random stream after the others, so adding them left every earlier clip as it was.
DIM_ATTACK_RECIPES = ("print_close_dim", "monitor_replay_dim")


@dataclass(frozen=True)
class Generated:
    file: str
    label: str  # attack or genuine
    attack_type: str  # print, screen_replay, or "" for genuine
    person: str
    source: str  # the shared file it was made from
    recipe: str


class GeneratorError(ValueError):
    pass


def read_persons(path: Path = PERSONS_CSV) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as stream:
        return {row["file"]: row["person"] for row in csv.DictReader(stream)}


def read_frames(path: Path, seconds: float, max_side: int = 640) -> list[np.ndarray]:
    """BGR frames at FPS over the first `seconds`, scaled so the longer side is at most `max_side`."""
    import av
    import cv2

    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for index, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else index / 30.0
            if t >= seconds:
                break
            if t + 1e-6 < len(frames) / FPS:
                continue
            bgr = frame.to_ndarray(format="bgr24")
            scale = min(1.0, max_side / max(bgr.shape[:2]))
            if scale < 1.0:
                bgr = cv2.resize(bgr, (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale)), interpolation=cv2.INTER_AREA)
            frames.append(bgr)
    if not frames:
        raise GeneratorError(f"no frames in {path}")
    return frames


def write_clip(path: Path, frames: list[np.ndarray], kbps: int) -> None:
    """H.264 at `kbps`, as a webcam's stream arrives compressed."""
    import av

    h, w = (d - d % 2 for d in frames[0].shape[:2])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.bit_rate = kbps * 1000
        for bgr in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr[:h, :w]), format="bgr24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def face_portrait(bgr: np.ndarray, detector) -> np.ndarray:
    """A head-and-shoulders crop (3:4) around the largest face, the face about 40 % of its width."""
    import cv2

    from server.matching.faces import detect_all

    faces, image = detect_all(detector, bgr)
    if not faces:
        raise GeneratorError("no face to print")
    x0, y0, x1, y1 = max(faces, key=lambda f: f.area).box[:4]
    cx, cy, fw = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0
    w = 2.5 * fw
    h = w * 4 / 3
    pad = int(max(w, h))
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    left, top = int(cx - w / 2) + pad, int(cy - h * 0.45) + pad
    return padded[top : top + int(h), left : left + int(w)]


def smooth_walk(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """A hand's tremor: a random walk, smoothed, of about `scale` amplitude."""
    steps = rng.normal(0, 1, n + 8)
    walk = np.convolve(np.cumsum(steps), np.ones(8) / 8, mode="valid")[:n]
    walk -= walk.mean()
    peak = np.abs(walk).max()
    return walk * (scale / peak if peak > 0 else 0.0)


def print_attack(portrait: np.ndarray, recipe: str, n: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    sheet = sc.printed(portrait, rng)
    scene = sc.background(rng)
    depth = {"print_close": 0.24, "print_far": 0.5}.get(recipe, 0.34)
    moving = recipe == "print_tilt_bend_shake"
    bend = rng.uniform(0.5, 0.9) if moving else 0.0
    jx, jy, jr = smooth_walk(rng, n, 6), smooth_walk(rng, n, 5), smooth_walk(rng, n, 3)
    phase = rng.uniform(0, 2 * np.pi)
    for i in range(n):
        t = i / FPS
        yaw = 22 * np.sin(2 * np.pi * t / 3.0 + phase) if moving else rng.normal(0, 0.5)
        pitch = 8 * np.sin(2 * np.pi * t / 4.1) if moving else 0.0
        light = (0.75 + 0.3 * np.sin(2 * np.pi * t / 2.7 + phase), 0.25) if moving else (1.0, 0.0)
        pose = sc.Pose(sc.FRAME_W / 2 + jx[i], sc.FRAME_H / 2 + jy[i], depth, yaw, pitch, jr[i])
        frame = scene.copy()
        sc.place_flat(frame, sheet, 0.16, pose, bend=bend, light=light)
        yield sc.camera(frame, rng, gain=light[0] if moving else 1.0)


def screen_attack(frames: list[np.ndarray], recipe: str, rng: np.random.Generator) -> Iterator[np.ndarray]:
    phone = recipe == "phone_replay"
    content_h, content_w = frames[0].shape[:2]
    # A phone shows a portrait video at its size; a monitor shows it letterboxed in a wider window.
    screen_w = 150 if phone else 260
    screen_h = int(screen_w * content_h / content_w)
    width_m, depth = (0.07, 0.18) if phone else (0.34, 0.55)
    gamma, black = rng.uniform(0.75, 1.35), rng.uniform(12, 35)
    tint = np.array([rng.uniform(1.0, 1.12), 1.0, rng.uniform(0.85, 1.0)], np.float32)
    scene = sc.background(rng)
    n = len(frames)
    jx, jy, jr = smooth_walk(rng, n, 7 if phone else 2), smooth_walk(rng, n, 6 if phone else 2), smooth_walk(rng, n, 3 if phone else 0.5)
    yaw0, glare_x = rng.uniform(-12, 12), rng.uniform(0.3, 0.7)
    for i, content in enumerate(frames):
        device = sc.on_screen(content, (screen_w, screen_h), gamma, black, tint, bezel=0.05 if phone else 0.03)
        pose = sc.Pose(sc.FRAME_W / 2 + jx[i], sc.FRAME_H / 2 + jy[i], depth, yaw0 + 4 * np.sin(i / 9), rng.normal(0, 0.3), jr[i])
        frame = scene.copy()
        outline = sc.place_flat(frame, device, width_m, pose, smooth=False)
        left, right = outline[:, 0].min(), outline[:, 0].max()
        top, bottom = outline[:, 1].min(), outline[:, 1].max()
        glare_at = (left + (glare_x + 0.1 * np.sin(i / 11)) * (right - left), top + 0.3 * (bottom - top))
        sc.add_glare(frame, glare_at, 0.25 * (right - left), rng.uniform(40, 90))
        yield sc.camera(frame, rng, blur=0.5)


def degrade(frames: list[np.ndarray], recipe: str, rng: np.random.Generator) -> Iterator[np.ndarray]:
    for bgr in frames:
        if recipe == "defocus":
            yield sc.defocus(bgr, 1.8)
        elif recipe == "low_light":
            yield sc.low_light(bgr, rng)
        elif recipe == "low_resolution":
            yield sc.low_resolution(bgr, 200)
        else:
            yield bgr


def dim_attack(portrait: np.ndarray, frames: list[np.ndarray], recipe: str, n: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """A close print or a monitor replay filmed in the dim room of the `low_light` genuine clips."""
    base = recipe.removesuffix("_dim")
    made = print_attack(portrait, base, n, rng) if base.startswith("print") else screen_attack(frames[:n], base, rng)
    for bgr in made:
        yield sc.low_light(bgr, rng)


def generate(media: Path, out: Path, seconds: float = 4.0, seed: int = 7, only: set[str] | None = None,
             recipes: set[str] | None = None) -> list[Generated]:
    """Write the clips into `out` and list them (also written as out/pad_clips.csv). `recipes`: only those; the
    dim attacks are then the full run's clips (their own random stream), the other recipes are not (they share one)."""
    import cv2

    from server.models.loader import load_face_models

    out = Path(out).resolve()
    if out == REPO or REPO in out.parents:
        raise GeneratorError(f"{out} is inside the repository: generated media must stay out of it")
    out.mkdir(parents=True, exist_ok=True)
    persons = read_persons()
    with open(media / "pad_clips.csv", newline="", encoding="utf-8") as stream:
        genuine = [row["file"] for row in csv.DictReader(stream) if row["label"] == "genuine"]
    if only:
        genuine = [f for f in genuine if persons.get(f) in only]
    detector = load_face_models().detector
    made: list[Generated] = []

    def emit(name: str, frames: Iterator[np.ndarray] | list[np.ndarray], label: str, kind: str, person: str, source: str, recipe: str, kbps: int) -> None:
        if recipes and recipe not in recipes:
            return
        write_clip(out / name, list(frames), kbps)
        made.append(Generated(name, label, kind, person, source, recipe))
        print(f"{name}", file=sys.stderr)

    for number, clip in enumerate(genuine):
        person = persons.get(clip, Path(clip).stem)
        rng = np.random.default_rng(seed * 1000 + number)
        frames = read_frames(media / "videos" / clip, seconds + 2.0)
        portrait = face_portrait(frames[min(len(frames) - 1, FPS // 2)], detector)
        n = int(seconds * FPS)
        for recipe in ATTACK_RECIPES:
            kind = "print" if recipe.startswith("print") else "screen_replay"
            made_frames = print_attack(portrait, recipe, n, rng) if kind == "print" else screen_attack(frames[:n], recipe, rng)
            emit(f"gen_{recipe}_{person}.mp4", made_frames, "attack", kind, person, clip, recipe, 600)
        for recipe in GENUINE_RECIPES:
            kbps = 120 if recipe == "compressed" else 350
            emit(f"gen_genuine_{recipe}_{person}.mp4", degrade(frames, recipe, rng), "genuine", "", person, clip, recipe, kbps)
        dim_rng = np.random.default_rng(seed * 1000 + number + 500_000)
        for recipe in DIM_ATTACK_RECIPES:
            kind = "print" if recipe.startswith("print") else "screen_replay"
            emit(f"gen_{recipe}_{person}.mp4", dim_attack(portrait, frames, recipe, n, dim_rng), "attack", kind, person, clip, recipe, 600)
    for number, relative in enumerate(PORTRAITS):
        person = relative.split("/")[0]
        if only and person not in only:
            continue
        photo = cv2.imread(str(media / "photos" / relative))
        if photo is None:
            raise GeneratorError(f"cannot read {relative}")
        rng = np.random.default_rng(seed * 7919 + number)
        recipe = ("print_tilt_bend_shake", "print_close")[number % 2]
        emit(f"gen_{recipe}_{person}.mp4", print_attack(face_portrait(photo, detector), recipe, int(seconds * FPS), rng),
             "attack", "print", person, f"photos/{relative}", recipe, 600)
    with open(out / "pad_clips.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(Generated.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(g) for g in made)
    return made


def run(args: argparse.Namespace) -> int:
    from server.console import fail

    try:
        made = generate(Path(args.media), Path(args.out), args.seconds, args.seed, set(args.person or []) or None, set(args.recipe or []) or None)
    except (GeneratorError, OSError) as error:
        return fail("pad_attacks", str(error), False)
    attacks = sum(g.label == "attack" for g in made)
    print(f"{len(made)} clips ({attacks} attacks, {len(made) - attacks} genuine) in {args.out}, listed in {Path(args.out) / 'pad_clips.csv'}")
    return 0


def add_parser(sub) -> None:
    gen = sub.add_parser("pad-attacks", help="generate labelled print/screen attacks and degraded genuine clips for eval-pad")
    gen.add_argument("--media", default=str(REPO.parent / "shared" / "media"), help="the shared media folder (pad_clips.csv, videos/, photos/)")
    gen.add_argument("--out", required=True, help="output folder, outside the repository (e.g. /tmp/pad-attacks)")
    gen.add_argument("--seconds", type=float, default=4.0, help="length of each attack clip (genuine: 2 s more)")
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--recipe", action="append", choices=DIM_ATTACK_RECIPES,
                     help="only this dim attack (repeatable): the same clips as a full run's, since each has its own random stream")
    gen.add_argument("--person", action="append", help="only this person (repeatable; names from realname_tools/data/pad_persons.csv)")
    gen.set_defaults(func=run)
