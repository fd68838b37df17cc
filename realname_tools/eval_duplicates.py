"""`python -m server eval-duplicates`: the face gallery's 1:N accuracy on folders of photos, one per identity.

Each identity's first photo (by name) is enrolled; each of its other photos is searched in the gallery
(mated searches), padded with N synthetic distractor templates, and again in the gallery without its own
identity (non-mated searches). At the configured threshold (GALLERY_FAR in the matcher's calibration):

- FNIR: mated searches whose own identity is not the top candidate at or above the threshold;
- FPIR: non-mated searches that return any candidate at or above the threshold;
- "other identity returned": mated searches that also return someone else above the threshold,

for galleries of 0, 10^3, 10^4, ... up to N distractors (each a prefix of the next).

Distractors ("matched", the default) mimic real templates: the mean template plus a Gaussian deviation
with the covariance of the other identities' templates (a random combination of their deviations from the
mean), so they share the anisotropy of real faces, whose impostor scores spread wider than random
vectors' do. For the photos of an identity the model is built without that identity (leave one out),
so no distractor resembles the face it is compared with more than another person does. "random": unit
vectors uniform on the sphere (far easier). The report compares both score distributions with the
real impostor scores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
CHUNK = 20_000


def identity_photos(root: Path) -> dict[str, list[Path]]:
    """Folder name -> its photos, sorted; folders starting with `_` are not identities."""
    out = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if photos:
            out[folder.name] = photos
    return out


def embed_all(matcher, photos: dict[str, list[Path]]) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    from server.matching.faces import FaceError
    from server.matching.images import ImageError, decode_image

    templates: dict[str, list[np.ndarray]] = {}
    failed = []
    for name, paths in photos.items():
        for path in paths:
            try:
                face = matcher.embed_photo(decode_image(path.read_bytes()), check=False)
            except (FaceError, ImageError):
                failed.append(f"{name}/{path.name}")
                continue
            templates.setdefault(name, []).append(np.asarray(face.embedding, dtype=np.float32))
    return templates, failed


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def distractor_maxima(
    probes: np.ndarray, others: np.ndarray, count: int, sizes: list[int], model: str, rng: np.random.Generator, sample: list[float]
) -> np.ndarray:
    """For each probe, the highest score among the first `size` distractors, for each size (probes x sizes).
    `others`: real templates of other identities, from which the matched model is built."""
    mean = others.mean(axis=0)
    deviations = (others - mean) / np.sqrt(len(others))  # x ~ mean + deviations.T @ N(0, I): covariance of `others`
    best = np.full((len(probes), len(sizes)), -1.0, dtype=np.float32)
    running = np.full(len(probes), -1.0, dtype=np.float32)
    done = 0
    edges = sorted(set(sizes))
    while done < count:
        size = min(CHUNK, count - done)
        if model == "random":
            chunk = unit(rng.standard_normal((size, probes.shape[1])).astype(np.float32))
        else:
            chunk = unit((mean + rng.standard_normal((size, len(others))).astype(np.float32) @ deviations).astype(np.float32))
        scores = chunk @ probes.T  # distractors x probes
        if done == 0:
            sample.extend(scores[:200].ravel().tolist())  # their score distribution, beside the real impostors'
        for edge in edges:  # the maximum within each prefix the chunk reaches into
            if done < edge:
                part = scores[: min(size, edge - done)]
                if len(part):
                    upto = np.maximum(running, part.max(axis=0))
                    if edge <= done + size:
                        best[:, sizes.index(edge)] = upto
        running = np.maximum(running, scores.max(axis=0))
        done += size
    for column, edge in enumerate(sizes):
        if edge == 0:
            best[:, column] = -1.0
        elif edge > count:
            best[:, column] = running
    return best


def evaluate(templates: dict[str, list[np.ndarray]], threshold: float, distractors: int, model: str, seed: int = 7) -> dict:
    names = [name for name, found in templates.items() if found]
    enrolled = np.stack([templates[name][0] for name in names])
    sizes = [0] + [10**e for e in range(3, 12) if 10**e < distractors] + ([distractors] if distractors else [])
    rng = np.random.default_rng(seed)
    mated_scores, impostor_scores, distractor_best, distractor_sample = [], [], [], []
    rows = []  # per probe: mate score, best other real score, distractor maxima per size
    for index, name in enumerate(names):
        probes = np.stack(templates[name][1:]) if len(templates[name]) > 1 else np.empty((0, enrolled.shape[1]), np.float32)
        if not len(probes):
            continue
        others = np.stack([t for other in names if other != name for t in templates[other]])
        real = probes @ enrolled.T  # probes x identities
        maxima = distractor_maxima(probes, others, distractors, sizes, model, rng, distractor_sample) if distractors else np.full((len(probes), len(sizes)), -1.0)
        for p in range(len(probes)):
            other_real = np.delete(real[p], index)
            rows.append((float(real[p, index]), float(other_real.max()) if len(other_real) else -1.0, maxima[p]))
            mated_scores.append(float(real[p, index]))
            impostor_scores.extend(float(s) for s in other_real)
            distractor_best.append(float(maxima[p, -1]))
    by_size = []
    for column, size in enumerate(sizes):
        found = sum(1 for mate, other, best in rows if mate >= threshold and mate > max(other, best[column]))
        false_positive = sum(1 for _, other, best in rows if max(other, best[column]) >= threshold)
        by_size.append({
            "distractors": size,
            "gallery_size": len(names) + size,
            "fnir": round(1 - found / len(rows), 6) if rows else None,
            "fpir": round(false_positive / len(rows), 6) if rows else None,
            "non_mated_false_positives": false_positive,
        })
    by_threshold = []  # the same searches at the full gallery, at other thresholds (choosing one for a gallery's size)
    for level in sorted({round(threshold, 4), *(round(x, 2) for x in np.arange(0.30, 0.461, 0.02))}):
        found = sum(1 for mate, other, best in rows if mate >= level and mate > max(other, best[-1]))
        false_positive = sum(1 for _, other, best in rows if max(other, best[-1]) >= level)
        by_threshold.append({"threshold": level, "fnir": round(1 - found / len(rows), 6), "fpir": round(false_positive / len(rows), 6)} if rows else {})
    impostors = np.asarray(impostor_scores)
    return {
        "identities": len(names),
        "enrolled": len(names),
        "mated_searches": len(rows),
        "non_mated_searches": len(rows),
        "threshold": threshold,
        "distractors": distractors,
        "distractor_model": model,
        "fnir": by_size[-1]["fnir"],
        "fpir": by_size[-1]["fpir"],
        "missed": [round(mate, 4) for mate, other, best in rows if not (mate >= threshold and mate > max(other, best[-1]))],
        "other_identity_returned": sum(1 for mate, other, best in rows if max(other, best[-1]) >= threshold),
        "by_gallery_size": by_size,
        "by_threshold": by_threshold,
        "scores": {
            "mated": _summary(np.asarray(mated_scores)),
            "real_impostor": _summary(impostors),
            "distractor": _summary(np.asarray(distractor_sample)),
            "highest_distractor_per_search": _summary(np.asarray(distractor_best)) if distractors else None,
        },
    }


def _summary(values: np.ndarray) -> dict | None:
    if not len(values):
        return None
    return {
        "count": int(len(values)),
        "min": round(float(values.min()), 4),
        "mean": round(float(values.mean()), 4),
        "std": round(float(values.std()), 4),
        "median": round(float(np.median(values)), 4),
        "max": round(float(values.max()), 4),
    }


def run(args: argparse.Namespace) -> int:
    from server.config import load_settings
    from server.console import fail, print_json
    from server.gallery.service import gallery_threshold
    from server.matching.calibration import CalibrationError, calibration_for
    from server.matching.matcher import FaceMatcher
    from server.models.files import ModelFileError
    from server.models.loader import load_face_models

    root = Path(args.photos)
    if not root.is_dir():
        return fail("bad_photos", f"{root} is not a folder", args.json)
    if args.distractors < 0:
        return fail("bad_distractors", "--distractors must be 0 or more", args.json)
    try:
        settings = load_settings(args.config)
        calibration = calibration_for(settings.face_model_dir, settings.calibration_file)
        matcher = FaceMatcher(load_face_models(settings.face_model_dir), calibration, settings.match_far, settings.review_far)
        if args.far:
            settings = settings.replace(gallery_far=args.far, gallery_threshold=0.0)
        if args.threshold:
            settings = settings.replace(gallery_threshold=args.threshold)
        far = None if settings.gallery_threshold else settings.gallery_far
        threshold = gallery_threshold(settings, calibration)
    except (ModelFileError, CalibrationError, ValueError) as error:
        return fail("configuration", str(error), args.json)
    photos = identity_photos(root)
    if not args.json:
        print(f"embedding {sum(len(p) for p in photos.values())} photos of {len(photos)} identities", file=sys.stderr)
    templates, failed = embed_all(matcher, photos)
    report = evaluate(templates, threshold, args.distractors, args.model)
    report.update({"far": far, "photos_without_a_face": failed, "photos": str(root)})
    if args.json:
        print_json(report)
    else:
        print(f"threshold {threshold} (FAR {far or 'not from the calibration'}); {report['mated_searches']} searches of {report['identities']} identities")
        for row in report["by_gallery_size"]:
            print(f"  {row['distractors']:>9} distractors: FNIR {row['fnir']}  FPIR {row['fpir']}")
        print(f"scores: {report['scores']}")
    return 0


def add_parser(sub) -> None:
    parser = sub.add_parser("eval-duplicates", help="measure the face gallery's 1:N search (FPIR, FNIR) on folders of photos, one per identity")
    parser.add_argument("--photos", required=True, help="a folder with one folder of photos per identity (folders starting with _ are skipped)")
    parser.add_argument("--distractors", type=int, default=100_000, help="synthetic templates padding the gallery (default 100000)")
    parser.add_argument("--model", choices=["matched", "random"], default="matched", help="how distractors are made (see the module's notes)")
    parser.add_argument("--far", type=float, help="the calibration's FAR for the threshold (default: GALLERY_THRESHOLD, else GALLERY_FAR)")
    parser.add_argument("--threshold", type=float, help="a cosine threshold instead")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)
