"""Synthetic photographed ID cards, to measure the matcher on ID-like references (a calibration aid).
(`id_documents` prints readable documents on cards and photographs them the same way.)

A portrait is printed small on a card layout with text and a security pattern (plus a faint "ghost"
copy, as on many national cards), the card is photographed at an angle on a table, with glare,
slight blur, sensor noise and JPEG compression. Deterministic for a given seed.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.matching.faces import detect_all
from server.models.detector import FaceDetector

CARD_W, CARD_H = 1012, 638  # ID-1 format at about 300 dpi
PORTRAIT_W, PORTRAIT_H = 260, 320  # ID portrait aspect (GA 461: 358x441)


@dataclass(frozen=True)
class CardStyle:
    glare: bool = True
    angle_deg: float = 12.0  # largest in-plane rotation
    perspective: float = 0.07  # largest corner displacement, as a fraction of the card
    jpeg_quality: tuple[int, int] = (55, 85)
    photo_width: int = 1280
    glare_strength: tuple[float, float] = (90, 170)  # added brightness at the glare's centre
    blur_sigma: tuple[float, float] = (0.6, 1.3)


def portrait_crop(bgr: np.ndarray, detector: FaceDetector) -> np.ndarray:
    """An ID-style head-and-shoulders crop: the face about 58% of the portrait's width, centred."""
    import cv2

    faces, _ = detect_all(detector, bgr)
    h, w = bgr.shape[:2]
    if faces:
        face = max(faces, key=lambda f: f.area)
        cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
        width = face.width / 0.58
    else:
        cx, cy, width = w / 2, h / 2, min(w, h * PORTRAIT_W / PORTRAIT_H)
    height = width * PORTRAIT_H / PORTRAIT_W
    x0, y0 = cx - width / 2, cy - height * 0.45
    src = np.float32([[x0, y0], [x0 + width, y0], [x0, y0 + height]])
    dst = np.float32([[0, 0], [PORTRAIT_W, 0], [0, PORTRAIT_H]])
    matrix = cv2.getAffineTransform(src, dst)
    return cv2.warpAffine(bgr, matrix, (PORTRAIT_W, PORTRAIT_H), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def card_photo(portrait: np.ndarray, seed: int, style: CardStyle | None = None) -> np.ndarray:
    import cv2

    style = style or CardStyle()
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    card = _card_layout(rng)
    printed = _as_printed(portrait, nrng)
    px, py = CARD_W - PORTRAIT_W - 50, 120
    card[py : py + PORTRAIT_H, px : px + PORTRAIT_W] = printed
    ghost = cv2.resize(printed, (PORTRAIT_W // 3, PORTRAIT_H // 3), interpolation=cv2.INTER_AREA)
    gx, gy = 60, CARD_H - ghost.shape[0] - 40
    region = card[gy : gy + ghost.shape[0], gx : gx + ghost.shape[1]].astype(np.float32)
    card[gy : gy + ghost.shape[0], gx : gx + ghost.shape[1]] = (0.7 * region + 0.3 * ghost).astype(np.uint8)

    return photographed(card, rng, nrng, style)


def photographed(card: np.ndarray, rng: random.Random, nrng: np.random.Generator, style: CardStyle) -> np.ndarray:
    """A flat card image as a phone photographs it on a table: at an angle, in perspective, with uneven
    exposure, glare, blur, sensor noise and JPEG compression."""
    import cv2

    card_h, card_w = card.shape[:2]
    out_w = style.photo_width
    out_h = out_w * 3 // 4
    table = _table(out_w, out_h, nrng)
    scale = rng.uniform(0.6, 0.85) * out_w / card_w
    corners = np.float32([[0, 0], [card_w, 0], [card_w, card_h], [0, card_h]])
    angle = np.radians(rng.uniform(-style.angle_deg, style.angle_deg))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centred = (corners - [card_w / 2, card_h / 2]) * scale
    jitter = np.array([[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(4)]) * style.perspective * card_w * scale
    placed = (centred @ rotation.T + jitter + [out_w / 2, out_h / 2]).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(corners, placed)
    warped = cv2.warpPerspective(card, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((card_h, card_w), 255, np.uint8), matrix, (out_w, out_h))
    photo = np.where(mask[..., None] > 0, warped, table).astype(np.float32)

    photo *= rng.uniform(0.75, 1.1)  # exposure
    if style.glare:
        gx, gy = rng.uniform(0.25, 0.75) * out_w, rng.uniform(0.25, 0.75) * out_h
        yy, xx = np.mgrid[0:out_h, 0:out_w]
        sx, sy = rng.uniform(0.08, 0.2) * out_w, rng.uniform(0.05, 0.15) * out_h
        glare = np.exp(-(((xx - gx) / sx) ** 2 + ((yy - gy) / sy) ** 2))
        photo += (glare * rng.uniform(*style.glare_strength))[..., None]
    photo = cv2.GaussianBlur(photo, (0, 0), rng.uniform(*style.blur_sigma))
    photo += nrng.normal(0, rng.uniform(2, 6), photo.shape)
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(*style.jpeg_quality)])
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def _card_layout(rng: random.Random) -> np.ndarray:
    import cv2

    base = np.array([rng.randint(205, 240), rng.randint(215, 245), rng.randint(220, 250)], dtype=np.float32)
    yy, xx = np.mgrid[0:CARD_H, 0:CARD_W].astype(np.float32)
    pattern = 8 * np.sin(xx / 9.0 + 6 * np.sin(yy / 37.0)) + 6 * np.sin(yy / 7.0 + 4 * np.sin(xx / 53.0))
    card = np.clip(base + pattern[..., None], 0, 255).astype(np.uint8)
    cv2.rectangle(card, (0, 0), (CARD_W, 70), (150, 90, 40), -1)
    cv2.putText(card, "IDENTITY CARD", (40, 50), cv2.FONT_HERSHEY_DUPLEX, 1.4, (255, 255, 255), 2, cv2.LINE_AA)
    fields = ["NAME", "SEX", "BORN", "ADDRESS", "", "CARD No."]
    for i, label in enumerate(fields):
        y = 140 + i * 62
        if label:
            cv2.putText(card, label, (50, y), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (110, 80, 60), 2, cv2.LINE_AA)
        value = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789 ") for _ in range(rng.randint(8, 18)))
        cv2.putText(card, value, (200, y), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (30, 30, 30), 2, cv2.LINE_AA)
    return card


def _as_printed(portrait: np.ndarray, nrng: np.random.Generator) -> np.ndarray:
    """Lower contrast, a colour cast and fine print grain."""
    toned = portrait.astype(np.float32) * 0.8 + 30 + nrng.normal(0, 4, portrait.shape)
    toned *= np.array([1.0, 0.97, 0.93], dtype=np.float32)
    return np.clip(toned, 0, 255).astype(np.uint8)


def _table(width: int, height: int, nrng: np.random.Generator) -> np.ndarray:
    import cv2

    colour = nrng.uniform(40, 140, 3)
    noise = cv2.GaussianBlur(nrng.normal(0, 25, (height, width)).astype(np.float32), (0, 0), 6)
    return np.clip(colour + noise[..., None], 0, 255).astype(np.float32)


def write_card_set(
    pairs_csv: str | Path, root: str | Path, out: str | Path, detector: FaceDetector, keep_photo_pairs: bool = False
) -> Path:
    """For every first image of a pairs list, a card made from it under OUT/cards/; a new pairs list where
    each pair's first image is replaced by its card (the ID document) and the second stays a photo.
    With keep_photo_pairs the original photo-vs-photo pairs are listed too (for a calibration on both)."""
    import cv2

    from server.matching.evaluation import read_pairs
    from server.matching.images import decode_image

    root, out = Path(root), Path(out)
    pairs = read_pairs(pairs_csv)
    (out / "cards").mkdir(parents=True, exist_ok=True)
    made: dict[str, str] = {}
    for index, name in enumerate(sorted({p.a for p in pairs})):
        try:
            bgr = decode_image((root / name).read_bytes(), max_bytes=1 << 30, max_pixels=200_000_000)
        except Exception:  # an unreadable source stays a failure to enrol in the evaluation
            continue
        card_name = "cards/" + name.replace("/", "__").rsplit(".", 1)[0] + ".jpg"
        cv2.imwrite(str(out / card_name), card_photo(portrait_crop(bgr, detector), seed=index))
        made[name] = card_name
    linked = {p.b for p in pairs} | ({p.a for p in pairs} if keep_photo_pairs else set())
    for name in linked:
        link = out / "photos" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to((root / name).resolve())
    result = out / "card_pairs.csv"
    with open(result, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file_a", "file_b", "same"])
        for p in pairs:
            writer.writerow([made.get(p.a, "cards/missing-" + p.a.replace("/", "__")), "photos/" + p.b, int(p.same)])
        if keep_photo_pairs:
            for p in pairs:
                writer.writerow(["photos/" + p.a, "photos/" + p.b, int(p.same)])
    return result
