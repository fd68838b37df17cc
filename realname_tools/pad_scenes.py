"""Rendering for `pad-attacks`: a print or a screen held in front of a camera, and a camera's faults.

Pure image functions (numpy and OpenCV), deterministic given their arguments. A sheet or a screen is a
plane in front of a pinhole camera; a bent sheet is a cylinder drawn as vertical strips, each a plane.
A screen is drawn at three camera pixels per screen pixel with an RGB sub-pixel mask and warped down
without smoothing, so its pixel grid beats with the camera's: that is the moire a re-filmed screen shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FRAME_W, FRAME_H = 640, 480
FOCAL = 600.0  # pixels: a typical laptop webcam's field of view at 640x480


@dataclass(frozen=True)
class Pose:
    """Where a flat item sits: its centre (pixels in the frame at depth `depth`), rotations in degrees."""

    cx: float
    cy: float
    depth: float = 1.0  # metres (any unit: only the ratio to `width` matters)
    yaw: float = 0.0  # about the vertical axis: one side further away
    pitch: float = 0.0
    roll: float = 0.0  # in the image plane


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def project(points: np.ndarray, pose: Pose) -> np.ndarray:
    """3D points (N x 3, item coordinates, metres, centred) -> N x 2 frame pixels."""
    rotated = points @ rotation(pose.yaw, pose.pitch, pose.roll).T
    centre = np.array([(pose.cx - FRAME_W / 2) * pose.depth / FOCAL, (pose.cy - FRAME_H / 2) * pose.depth / FOCAL, pose.depth])
    world = rotated + centre
    return np.stack([FOCAL * world[:, 0] / world[:, 2] + FRAME_W / 2, FOCAL * world[:, 1] / world[:, 2] + FRAME_H / 2], axis=1)


def paste(scene: np.ndarray, item: np.ndarray, src: np.ndarray, dst: np.ndarray, smooth: bool = True, shade: float = 1.0) -> None:
    """Warp the quad `src` of `item` onto the quad `dst` of `scene` (in place)."""
    import cv2

    matrix = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    flags = cv2.INTER_LINEAR if smooth else cv2.INTER_NEAREST
    warped = cv2.warpPerspective(item, matrix, (scene.shape[1], scene.shape[0]), flags=flags)
    mask = np.zeros(item.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(src).astype(np.int32), 255)
    mask = cv2.warpPerspective(mask, matrix, (scene.shape[1], scene.shape[0]), flags=cv2.INTER_LINEAR)
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    scene[:] = np.clip(scene * (1 - alpha) + warped * shade * alpha, 0, 255)


def place_flat(scene: np.ndarray, item: np.ndarray, width_m: float, pose: Pose, bend: float = 0.0, light: tuple[float, float] = (1.0, 0.0),
               smooth: bool = True) -> np.ndarray:
    """Draw `item` (an image `width_m` wide) at `pose`; `bend` > 0 curves it as a cylinder of radius
    width/bend; `light` is (gain, side): strips facing the light side are brighter. Returns the item's
    outline in the frame (4 x 2)."""
    h, w = item.shape[:2]
    height_m = width_m * h / w
    strips = 12 if bend > 0 else 1
    edges = np.linspace(-width_m / 2, width_m / 2, strips + 1)
    gain, side = light
    outline = []
    for i in range(strips):
        u0, u1 = edges[i], edges[i + 1]
        if bend > 0:
            radius = width_m / bend
            x0, z0 = radius * math.sin(u0 / radius), radius * (1 - math.cos(u0 / radius))
            x1, z1 = radius * math.sin(u1 / radius), radius * (1 - math.cos(u1 / radius))
            normal_x = math.sin((u0 + u1) / 2 / radius)
        else:
            x0, z0, x1, z1, normal_x = u0, 0.0, u1, 0.0, 0.0
        corners = np.array([[x0, -height_m / 2, z0], [x1, -height_m / 2, z1], [x1, height_m / 2, z1], [x0, height_m / 2, z0]])
        dst = project(corners, pose)
        px0, px1 = (u0 + width_m / 2) / width_m * (w - 1), (u1 + width_m / 2) / width_m * (w - 1)
        src = np.array([[px0, 0], [px1, 0], [px1, h - 1], [px0, h - 1]])
        paste(scene, item, src, dst, smooth, gain * (1 + side * normal_x))
        outline.append(dst)
    return np.array([outline[0][0], outline[-1][1], outline[-1][2], outline[0][3]])


def background(rng: np.random.Generator) -> np.ndarray:
    """A room-like backdrop: a lit wall gradient, a door or shelf or two, some texture."""
    import cv2

    base = rng.uniform(90, 200, 3)
    ys, xs = np.mgrid[0:FRAME_H, 0:FRAME_W].astype(np.float32)
    ramp = 0.75 + 0.35 * (xs / FRAME_W if rng.random() < 0.5 else 1 - xs / FRAME_W)
    scene = (base[None, None, :] * ramp[..., None]).astype(np.float32)
    for _ in range(int(rng.integers(1, 4))):
        x0, y0 = int(rng.integers(0, FRAME_W - 80)), int(rng.integers(0, FRAME_H - 80))
        colour = tuple(float(c) for c in rng.uniform(30, 220, 3))
        cv2.rectangle(scene, (x0, y0), (x0 + int(rng.integers(60, 260)), y0 + int(rng.integers(60, 300))), colour, -1)
    noise = cv2.GaussianBlur(rng.normal(0, 12, (FRAME_H, FRAME_W)).astype(np.float32), (0, 0), 3)
    return np.clip(scene + noise[..., None], 0, 255)


def printed(photo: np.ndarray, rng: np.random.Generator, margin: float = 0.06) -> np.ndarray:
    """A photo as an inkjet/laser print: narrower gamut (paper is not white, ink not black), a slight
    colour cast, a halftone-like grain, a white paper margin."""
    import cv2

    img = photo.astype(np.float32)
    paper = rng.uniform(225, 245)
    ink = rng.uniform(18, 40)
    img = ink + img / 255.0 * (paper - ink)
    img *= rng.uniform(0.94, 1.04, 3)[None, None, :]
    grain = rng.normal(0, 6, img.shape[:2]).astype(np.float32)
    img += cv2.GaussianBlur(grain, (0, 0), 0.7)[..., None]
    pad_x, pad_y = int(img.shape[1] * margin), int(img.shape[0] * margin)
    sheet = np.full((img.shape[0] + 2 * pad_y, img.shape[1] + 2 * pad_x, 3), paper, np.float32)
    sheet[pad_y : pad_y + img.shape[0], pad_x : pad_x + img.shape[1]] = img
    return np.clip(sheet, 0, 255)


def on_screen(content: np.ndarray, screen_px: tuple[int, int], gamma: float, black: float, tint: np.ndarray, bezel: float) -> np.ndarray:
    """`content` shown on a screen of `screen_px` (w, h) pixels, with its gamma, black level and tint,
    drawn at 3x3 camera-scale pixels with an RGB sub-pixel stripe, in a black bezel `bezel` wide (a
    fraction of the screen's width)."""
    import cv2

    sw, sh = screen_px
    shown = cv2.resize(content, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    shown = black + (255 - black) * np.power(shown, gamma) * tint[None, None, :]
    big = np.repeat(np.repeat(shown, 3, axis=0), 3, axis=1)
    stripes = np.zeros((1, 3, 3), np.float32) + 0.35
    for column, channel in enumerate((2, 1, 0)):  # BGR: red sub-pixel first
        stripes[0, column, channel] = 1.0
    big *= np.tile(stripes, (3 * sh, sw, 1)) * 1.5
    big[2::3, :, :] *= 0.6  # the dark row between pixel rows
    edge = int(bezel * big.shape[1])
    framed = np.full((big.shape[0] + 2 * edge, big.shape[1] + 2 * edge, 3), 12.0, np.float32)
    framed[edge : edge + big.shape[0], edge : edge + big.shape[1]] = big
    return np.clip(framed, 0, 255)


def add_glare(scene: np.ndarray, centre: tuple[float, float], radius: float, strength: float) -> None:
    ys, xs = np.mgrid[0 : scene.shape[0], 0 : scene.shape[1]].astype(np.float32)
    d2 = ((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 * 2.0) / (radius * radius)
    scene += (strength * np.exp(-d2))[..., None]


def camera(scene: np.ndarray, rng: np.random.Generator, gain: float = 1.0, blur: float = 0.6, noise: float = 3.0) -> np.ndarray:
    """What a webcam makes of the light: exposure gain, lens blur, sensor noise, 8 bits."""
    import cv2

    img = scene * gain
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    img = img + rng.normal(0, noise, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


# -- genuine clips degraded as poor webcams and links degrade them -------------------------------------


def low_light(bgr: np.ndarray, rng: np.random.Generator, gain: float = 0.32, noise: float = 7.0) -> np.ndarray:
    """A dim room: the sensor's gain lifts a dark exposure, and its noise with it (more in chroma)."""
    img = bgr.astype(np.float32) / 255.0
    img = np.power(img, 1.15) * gain * 255.0
    img += rng.normal(0, noise, img.shape[:2]).astype(np.float32)[..., None] + rng.normal(0, noise * 0.6, img.shape).astype(np.float32)
    return np.clip(img * 1.25, 0, 255).astype(np.uint8)


def defocus(bgr: np.ndarray, sigma: float = 1.8) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(bgr, (0, 0), sigma)


def low_resolution(bgr: np.ndarray, height: int = 200) -> np.ndarray:
    """A cheap sensor or a downscaled stream: the detail is lost, the size is restored."""
    import cv2

    h, w = bgr.shape[:2]
    small = cv2.resize(bgr, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
