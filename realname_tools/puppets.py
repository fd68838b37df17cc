"""Puppets of an ID portrait, and the calibration of the `reference_replay` signal (issue 24 item 2).

`make` animates a still portrait the cheap way, as the issue's attacker did: the whole photo tilted and
squeezed like a flat sheet for turns and nods, the eye region darkened for blinks, a slow sway, sensor-like
noise, blur and H.264 compression; it writes a clip (to /tmp: never commit generated media). `make --mesh`
makes the issue's real-time-capable puppet instead: the face's 478 MediaPipe landmarks rotated in 3D about
a point behind the face, the picture warped triangle by triangle to follow (nearer triangles over farther
ones), the upper lids drawn onto the lower ones for 200 ms to blink, each challenge with a human reaction
and timing, a slow sway, noise, blur, H.264.

`calibrate` measures what the signal sees, on the faces a check would match: identity similarity and
appearance similarity (server/spoof/reference_replay.py) of each face with the reference portrait, for
  - genuine pairs: two different photos of the same person (pairs.csv, same=1), the second one
    sent through the live path's VP8 link as a live frame would be;
  - puppets of each portrait, through the same link, against the portrait itself;
  - a still cut from a clip against the clip's own frames (not a different photo: the same light and
    camera, which the signal is meant to catch as well).

    python -m realname_tools.puppets make PHOTO /tmp/puppet.mp4 [--challenges blink,turn_left] [--mesh]
    python -m realname_tools.puppets calibrate [--media ../shared/media] [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import numpy as np

FPS = 25.0
SAME_CLIP = [
    ("vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg", "blink_frontal_man_phone_portrait_14s.mp4"),
    ("vid_tranv_selfie_man/frame_t0.5s_frontal.jpg", "headturn_lr_nod_phone_selfie_young_man_21s.mp4"),
]
FRAME = (480, 640)  # width, height of the puppet's picture: a phone held upright


@dataclass(frozen=True)
class PuppetStyle:
    turn_squeeze: float = 0.72  # horizontal scale at the height of a turn
    nod_squeeze: float = 0.8
    blink_darkening: float = 0.45  # the eye region's brightness during a blink
    sway_px: float = 3.0
    noise: float = 3.0  # grey levels of Gaussian noise
    blur: float = 0.8  # Gaussian sigma, pixels
    seed: int = 1


def portrait_frame(photo_bgr: np.ndarray, face_box: tuple[float, float, float, float]) -> np.ndarray:
    """The photo cropped and scaled so the face sits as in a selfie: centred, a third of the width."""
    import cv2

    x0, y0, x1, y1 = face_box
    cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)
    scale = FRAME[0] * 0.42 / side
    matrix = np.float32([[scale, 0, FRAME[0] / 2 - cx * scale], [0, scale, FRAME[1] * 0.45 - cy * scale]])
    return cv2.warpAffine(photo_bgr, matrix, FRAME, borderMode=cv2.BORDER_REPLICATE)


def animate(frame: np.ndarray, eyes: list[tuple[float, float]], challenges: list[str], style: PuppetStyle = PuppetStyle()) -> list[np.ndarray]:
    """Frames of the portrait performing each challenge in turn, with rests between them."""
    import cv2

    rng = np.random.default_rng(style.seed)
    h, w = frame.shape[:2]
    centre = np.mean(np.float32(eyes), axis=0) if eyes else np.float32([w / 2, h / 2])
    timeline: list[tuple[str, float]] = [("rest", 2.0)]
    for challenge in challenges:
        timeline += [(challenge, 1.4 if challenge != "blink" else 0.5), ("rest", 1.2)]
    out = []
    t_total = 0.0
    for action, duration in timeline:
        n = int(round(duration * FPS))
        for i in range(n):
            phase = np.sin(np.pi * (i + 0.5) / n)  # 0 -> 1 -> 0 over the movement
            sx, sy, shear, shift = 1.0, 1.0, 0.0, 0.0
            if action in ("turn_left", "turn_right"):
                sx = 1 - (1 - style.turn_squeeze) * phase
                shear = 0.08 * phase * (1 if action == "turn_left" else -1)
                shift = 12 * phase * (1 if action == "turn_left" else -1)
            elif action in ("nod", "look_up", "look_down"):
                sy = 1 - (1 - style.nod_squeeze) * phase
            sway = style.sway_px * np.array([np.sin(t_total * 1.3), np.cos(t_total * 0.9)])
            matrix = np.float32([[sx, shear, 0], [0, sy, 0]])
            matrix[:, 2] = centre - matrix[:, :2] @ centre + sway + np.float32([shift, 0])
            picture = cv2.warpAffine(frame, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            if action == "blink" and 0.25 < i / n < 0.75:
                for ex, ey in eyes:
                    p = matrix[:, :2] @ np.float32([ex, ey]) + matrix[:, 2]
                    x, y, r = int(p[0]), int(p[1]), int(w * 0.045)
                    picture[max(0, y - r // 2) : y + r // 2, max(0, x - r) : x + r] *= style.blink_darkening
            picture = cv2.GaussianBlur(picture, (0, 0), style.blur) + rng.normal(0, style.noise, picture.shape)
            out.append(np.clip(picture, 0, 255).astype(np.uint8))
            t_total += 1 / FPS
    return out


def write_clip(frames: list[np.ndarray], path: Path, crf: int = 28) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=int(FPS))
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def read_clip(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def puppet_of(matcher, photo_bgr: np.ndarray, challenges: list[str], style: PuppetStyle = PuppetStyle()) -> list[np.ndarray]:
    """The puppet's frames (before compression), from the photo's detected face and eyes."""
    from server.matching.faces import find_face

    found = find_face(matcher.models.detector, photo_bgr)
    frame = portrait_frame(found.image, tuple(found.face.box))
    face = max(matcher.models.detector.get(frame), key=lambda f: f.area)
    return animate(frame, [tuple(face.kps[0]), tuple(face.kps[1])], challenges, style)


# -- the mesh-warped puppet ---------------------------------------------------------------------------

# MediaPipe face mesh: each upper-lid point and the lower-lid point it closes onto (both eyes).
LIDS = [(159, 145), (158, 153), (157, 154), (173, 155), (160, 144), (161, 163), (246, 7),
        (386, 374), (385, 380), (384, 381), (398, 382), (387, 373), (388, 390), (466, 249)]
# The ring above each upper lid (its crease), in the same order: it follows the lid half way, so the lid's
# skin is stretched down over the eye rather than the eye squeezed shut.
CREASES = [247, 30, 29, 27, 28, 56, 190, 467, 260, 259, 257, 258, 286, 414]
MESH_POINTS = 468  # the iris points (468-477) are left out: the lids close over them
EYES = [  # each eye's contour, round
    [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7],
    [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249],
]


@dataclass(frozen=True)
class MeshStyle:
    """The issue's real-time puppet: the face's 3D landmarks rotated, the image warped triangle by
    triangle to follow them, the upper lids drawn onto the lower ones to blink."""

    turn_deg: float = 28.0
    nod_deg: float = 22.0
    blink_s: float = 0.2  # lids closed, with half as long again closing and opening
    lid_overshoot: float = 1.2  # the upper lid drawn a little past the lower lid's landmark, over the eye's edge
    pivot_depth: float = 0.75  # the head turns about a point this many face widths behind the face
    sway_deg: float = 1.5
    sway_px: float = 3.0
    noise: float = 2.5
    blur: float = 0.7
    seed: int = 1


def rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    y, p = np.radians(yaw_deg), np.radians(pitch_deg)
    turn = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]], dtype=np.float32)
    nod = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]], dtype=np.float32)
    return nod @ turn


def triangles(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Delaunay triangles (indices into points) of the rest pose."""
    import cv2

    w, h = size
    placed = np.stack([np.clip(points[:, 0], 0, w), np.clip(points[:, 1], 0, h)], 1).astype(np.float32)
    subdiv = cv2.Subdiv2D((-1, -1, w + 2, h + 2))
    for x, y in placed:
        subdiv.insert((float(x), float(y)))
    out = []
    for t in subdiv.getTriangleList().reshape(-1, 3, 2):
        nearest = np.argmin(((t[:, None, :] - placed[None]) ** 2).sum(-1), axis=1)  # each corner's point
        if np.abs(placed[nearest] - t).max() < 0.5 and len(set(nearest.tolist())) == 3:
            out.append(nearest)
    return np.array(out, dtype=np.int32)


def piecewise_warp(image: np.ndarray, source: np.ndarray, target: np.ndarray, tris: np.ndarray, depth: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The image warped so that each source triangle lands on its target triangle, within `box` (x0, y0,
    x1, y1: outside it every triangle stays put); nearer triangles (smaller depth) drawn over farther
    ones, as a turned head hides its far side."""
    import cv2

    x0, y0, x1, y1 = box
    owner = np.full((y1 - y0, x1 - x0), -1, dtype=np.int32)
    inverse = np.zeros((len(tris) + 1, 6), dtype=np.float32)
    inverse[-1] = (1, 0, 0, 0, 1, 0)  # pixels no triangle covers stay where they are
    offset = np.float32([x0, y0])
    for k in np.argsort(-depth):  # far first
        a, b = target[tris[k]].astype(np.float32), source[tris[k]].astype(np.float32)
        if abs(float(np.cross(a[1] - a[0], a[2] - a[0]))) < 1e-3:
            continue
        inverse[k] = cv2.getAffineTransform(a, b).reshape(6)
        cv2.fillConvexPoly(owner, np.round(a - offset).astype(np.int32), int(k))
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    m = inverse[owner]  # -1: the identity row
    map_x = m[..., 0] * xs + m[..., 1] * ys + m[..., 2]
    map_y = m[..., 3] * xs + m[..., 4] * ys + m[..., 5]
    out = image.copy()
    out[y0:y1, x0:x1] = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def drawn_lids(picture: np.ndarray, points: np.ndarray, closed: float) -> np.ndarray:
    """Each eye's opening, as it was open, painted over with the skin just above it (the upper lid drawn
    down) and a lash line along the lower lid, `closed` (0..1) of the way."""
    import cv2

    h, w = picture.shape[:2]
    for eye in EYES:
        contour = points[eye]
        height = int(np.ceil(np.ptp(contour[:, 1]))) + 2
        mask = np.zeros((h, w), np.float32)
        cv2.fillPoly(mask, [np.round(contour).astype(np.int32)], 1.0)
        mask = cv2.GaussianBlur(cv2.dilate(mask, np.ones((3, 3), np.uint8)), (0, 0), 1.0)[..., None] * closed
        above = np.roll(picture, height, axis=0)  # the skin one eye-height above, moved down
        picture = picture * (1 - mask) + above * mask
        lashes = np.zeros((h, w), np.float32)
        cv2.polylines(lashes, [np.round(contour[9:]).astype(np.int32)], False, 1.0, 2)
        picture = picture * (1 - 0.55 * closed * cv2.GaussianBlur(lashes, (0, 0), 0.7)[..., None])
    return picture


def mesh_timeline(challenges: list[str], rng: np.random.Generator, style: MeshStyle) -> list[tuple[float, float, float]]:
    """(yaw, pitch, lids closed 0..1) at every frame: a rest, then each challenge with a human's timing
    (a reaction, a movement out and back with a short hold, a blink of `blink_s`), rests between."""
    out: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * int(2.0 * FPS)
    for challenge in challenges:
        out += [(0.0, 0.0, 0.0)] * int(rng.uniform(0.3, 0.6) * FPS)  # the reaction
        if challenge == "blink":
            edge, held = max(1, int(style.blink_s * FPS / 2)), max(2, int(style.blink_s * FPS))
            out += [(0.0, 0.0, (i + 1) / (edge + 1)) for i in range(edge)] + [(0.0, 0.0, 1.0)] * held + [(0.0, 0.0, 1 - (i + 1) / (edge + 1)) for i in range(edge)]
        else:
            yaw = {"turn_left": -1.0, "turn_right": 1.0}.get(challenge, 0.0) * style.turn_deg
            pitch = {"look_up": -1.0, "look_down": 1.0, "nod": 1.0}.get(challenge, 0.0) * style.nod_deg
            go, hold = int(rng.uniform(0.5, 0.8) * FPS), int(rng.uniform(0.4, 0.7) * FPS)
            ease = [0.5 - 0.5 * np.cos(np.pi * (i + 1) / go) for i in range(go)]
            out += [(yaw * e, pitch * e, 0.0) for e in ease] + [(yaw, pitch, 0.0)] * hold + [(yaw * e, pitch * e, 0.0) for e in ease[::-1]]
        out += [(0.0, 0.0, 0.0)] * int(rng.uniform(1.0, 1.5) * FPS)
    return out


def mesh_animate(frame: np.ndarray, landmarks: np.ndarray, challenges: list[str], style: MeshStyle = MeshStyle()) -> list[np.ndarray]:
    """Frames of the portrait, its face mesh (478 points, x and y normalised, z relative) rotated and the
    picture warped to follow, performing each challenge in turn."""
    import cv2

    rng = np.random.default_rng(style.seed)
    h, w = frame.shape[:2]
    face = landmarks[:MESH_POINTS] * np.float32([w, h, w])
    width = float(np.ptp(face[:, 0]))
    pivot = np.float32([face[:, 0].mean(), face[:, 1].mean(), face[:, 2].mean() + style.pivot_depth * width])
    centre = pivot[:2]
    # A ring around the face (hair, ears, neck) and the frame's edges stay: the background does not move.
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    radius = np.float32([np.ptp(face[:, 0]), np.ptp(face[:, 1])]) * 0.85
    ring = centre + np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32) * radius
    edge = [(x, y) for x in np.linspace(0, w - 1, 5) for y in (0, h - 1)] + [(x, y) for y in np.linspace(0, h - 1, 7)[1:-1] for x in (0, w - 1)]
    source = np.concatenate([face[:, :2], ring, np.float32(edge)])
    tris = triangles(source, (w, h))
    x0, y0 = np.maximum(np.floor(ring.min(0)) - 2, 0).astype(int)
    x1, y1 = np.minimum(np.ceil(ring.max(0)) + 2, [w, h]).astype(int)
    box = (int(x0), int(y0), int(x1), int(y1))  # the ring holds the face in every pose
    out = []
    for index, (yaw, pitch, closed) in enumerate(mesh_timeline(challenges, rng, style)):
        t = index / FPS
        sway_yaw, sway_pitch = style.sway_deg * np.sin(t * 0.9), style.sway_deg * 0.7 * np.sin(t * 1.3 + 1)
        moved = (face - pivot) @ rotation(yaw + sway_yaw, pitch + sway_pitch).T + pivot
        shift = style.sway_px * np.float32([np.sin(t * 0.7), np.cos(t * 1.1)])
        points = moved[:, :2] + shift
        opened = points.copy()
        if closed > 0:
            for (upper, lower), crease in zip(LIDS, CREASES, strict=True):
                drop = closed * (points[lower] - points[upper])
                points[upper] += style.lid_overshoot * drop
                points[crease] += 0.6 * drop
        target = np.concatenate([points, ring, np.float32(edge)])
        depth = np.concatenate([moved[:, 2], np.full(len(ring) + len(edge), 1e6, np.float32)])[tris].mean(1)
        picture = piecewise_warp(frame, source, target, tris, depth, box).astype(np.float32)
        if closed > 0:
            picture = drawn_lids(picture, opened, closed)
        picture = cv2.GaussianBlur(picture, (0, 0), style.blur) + style.noise * rng.standard_normal(picture.shape, dtype=np.float32)
        out.append(np.clip(picture, 0, 255).astype(np.uint8))
    return out


def mesh_puppet_of(matcher, landmarker, photo_bgr: np.ndarray, challenges: list[str], style: MeshStyle = MeshStyle()) -> list[np.ndarray]:
    """The mesh-warped puppet's frames (before compression); `landmarker`: server/models/landmarker.py's."""
    import cv2

    frame = portrait_frame_of(matcher, photo_bgr)
    found = landmarker.get(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    if not found:
        raise ValueError("the landmarker finds no face in the portrait")
    return mesh_animate(frame, found[0].points, challenges, style)


# -- calibration --------------------------------------------------------------------------------------


def live_faces(matcher, frames: list[np.ndarray], every: int) -> list:
    """Faces of every `every`-th frame, each sent through the live page's VP8 link first."""
    import av

    from realname_tools.client import Vp8Link
    from server.rtc.bandwidth import RECEIVE_KBPS

    link = Vp8Link(RECEIVE_KBPS * 1000)
    faces = []
    for index, image in enumerate(frames):
        received = link.received(av.VideoFrame.from_ndarray(image, format="bgr24"), index / FPS)
        if received is None or index % every:
            continue
        faces += matcher.embed_live([received.to_ndarray(format="bgr24")])
    return faces


def stored_reference(matcher, photo_bgr: np.ndarray):
    """The reference as a check keeps it: the embedding and the aligned face as a JPEG (evidence)."""
    import cv2

    from server.flow.lifecycle import jpeg

    face = matcher.embed_photo(photo_bgr, check=False)
    return face.embedding, cv2.imdecode(np.frombuffer(jpeg(face.aligned), np.uint8), cv2.IMREAD_COLOR)


def scores(reference, faces) -> list[tuple[float, float]]:
    from server.matching.matcher import similarity
    from server.spoof.reference_replay import appearance_similarity

    embedding, aligned = reference
    return [(similarity(embedding, f.embedding), appearance_similarity(aligned, f.aligned)) for f in faces]


def calibrate(media: Path, limit: int | None, max_puppets: int | None = None) -> dict:
    matcher = service_matcher()
    load = lambda p: read_photo(media / "photos" / p)  # noqa: E731
    with (media / "pairs.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["same"] == "1" and not r["identity_a"].startswith(("vid_", "_"))]
    taken: dict[str, int] = {}
    pairs = []
    for row in rows:  # at most `limit` pairs of each person (angelina_jolie alone has 66)
        if limit is None or taken.get(row["identity_a"], 0) < limit:
            taken[row["identity_a"]] = taken.get(row["identity_a"], 0) + 1
            pairs.append((row["file_a"], row["file_b"]))
    genuine, puppets, portraits = [], [], []
    for a, b in pairs:
        try:
            reference = stored_reference(matcher, load(a))
            live = portrait_frame_of(matcher, load(b))
        except Exception as error:  # a photo without a usable face: not a pair for this
            print(f"skip {a} / {b}: {error}", file=sys.stderr)
            continue
        print(f"pair {len(genuine)}: {a} / {b}", file=sys.stderr)
        genuine += [(a, b, *s) for s in scores(reference, live_faces(matcher, [live] * 3, 2))]
        if a not in portraits and (max_puppets is None or len(portraits) < max_puppets):
            portraits.append(a)
            frames = puppet_of(matcher, load(a), ["blink", "turn_left", "nod"])
            with tempfile.NamedTemporaryFile(suffix=".mp4", dir="/tmp") as clip:  # never in the repository
                write_clip(frames, Path(clip.name))
                puppets += [(a, a, *s) for s in scores(reference, live_faces(matcher, read_clip(Path(clip.name)), 10))]
    same_clip = []
    for still, clip in SAME_CLIP:  # a frame of the stream itself as the reference: what the signal flags too
        reference = stored_reference(matcher, load(still))
        frames = read_clip(media / "videos" / clip)[: int(10 * FPS)]
        same_clip += [(still, clip, *s) for s in scores(reference, live_faces(matcher, frames, 25))]
    return {"genuine": genuine, "puppets": puppets, "same_clip": same_clip}


def service_matcher():
    from server.app import load_models
    from server.config import Settings

    return load_models(Settings()).matcher


def read_photo(path: Path) -> np.ndarray:
    from server.matching.images import decode_image

    return decode_image(path.read_bytes(), max_bytes=1 << 30, max_pixels=200_000_000)


def portrait_frame_of(matcher, photo_bgr: np.ndarray) -> np.ndarray:
    from server.matching.faces import find_face

    found = find_face(matcher.models.detector, photo_bgr)
    return portrait_frame(found.image, tuple(found.face.box))


def summary(rows: list[tuple]) -> dict:
    identity = [r[2] for r in rows]
    appearance = [r[3] for r in rows]
    q = lambda v: {"min": round(min(v), 3), "median": round(median(v), 3), "max": round(max(v), 3)} if v else None  # noqa: E731
    return {"faces": len(rows), "identity": q(identity), "appearance": q(appearance)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m realname_tools.puppets", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", help="animate a portrait into a clip")
    make.add_argument("photo")
    make.add_argument("out")
    make.add_argument("--challenges", default="blink,turn_left,turn_right,nod")
    make.add_argument("--mesh", action="store_true", help="the mesh-warped puppet (3D landmarks rotated, triangle warp) instead of the affine one")
    make.add_argument("--seed", type=int, default=1)
    cal = sub.add_parser("calibrate", help="genuine pairs and puppets against reference_replay's measures")
    cal.add_argument("--media", default="../shared/media")
    cal.add_argument("--limit", type=int, default=None, help="at most this many photo pairs of each person")
    cal.add_argument("--puppets", type=int, default=None, help="make at most this many puppets (0: genuine pairs only)")
    cal.add_argument("--json", default=None, help="write every face's scores here")
    args = parser.parse_args(argv)
    if args.command == "make":
        matcher = service_matcher()
        photo = read_photo(Path(args.photo))
        if args.mesh:
            from server.config import Settings
            from server.models.landmarker import FaceLandmarker
            from server.models.loader import landmarker_file

            settings = Settings()
            landmarker = FaceLandmarker(landmarker_file(settings.landmarker_model, settings.models_dir)).prepare()
            frames = mesh_puppet_of(matcher, landmarker, photo, args.challenges.split(","), MeshStyle(seed=args.seed))
            landmarker.close()
        else:
            frames = puppet_of(matcher, photo, args.challenges.split(","))
        write_clip(frames, Path(args.out))
        print(args.out)
        return 0
    result = calibrate(Path(args.media), args.limit, args.puppets)
    if args.json:
        Path(args.json).write_text(json.dumps(result))
    print(json.dumps({name: summary(rows) for name, rows in result.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
