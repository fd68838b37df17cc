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

The threshold a gallery needs comes from the impostor tail: a normal distribution fitted to the highest
tenth of every photo-against-photo impostor pair of the folders (`fit_tail`), extrapolated to the
per-comparison FAR that keeps FPIR at a target for a gallery size (1 - (1 - FAR)^N = FPIR). The report
gives the fit, what it predicts at the threshold in use against gallery size, and a leave-one-identity-out
cross-validation: each identity's searches judged at the threshold of a tail fitted without it (and its
real impostor pairs counted against what that tail predicts, where they can be counted). Rates come with
95 % Wilson intervals. `--write-calibration FILE` writes the calibration in use plus the fitted tail.

`--impostors DIR`: photos and videos of people who are none of the identities (every face of a group
photo, a few frames of each video), fitted on nothing: each face is searched in the gallery of enrolled
photos (padded with the same distractors) and compared with every identity photo, so that the FPIR and the
tail's fit are checked on faces other than the ones that set the threshold.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from statistics import NormalDist

import numpy as np

from server.matching.calibration import ImpostorTail

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".mkv"}
FRAMES_PER_VIDEO = 6  # evenly spaced: one person's frames are correlated, a few say as much as many
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


def embed_impostors(matcher, root: Path) -> list[np.ndarray]:
    """Every usable face (detected with confidence, at least the matcher's smallest face) in every photo,
    and in FRAMES_PER_VIDEO frames of every video, under `root`."""
    from server.matching.faces import RIVAL_MIN_SCORE, detect_all
    from server.matching.images import ImageError, decode_image

    templates = []
    for path in sorted(Path(folder) / name for folder, _, names in os.walk(root, followlinks=True) for name in names):
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            try:
                images = [decode_image(path.read_bytes())]
            except ImageError:
                continue
        elif suffix in VIDEO_SUFFIXES:
            images = video_frames(path, FRAMES_PER_VIDEO)
        else:
            continue
        for image in images:
            faces, scaled = detect_all(matcher.models.detector, image)
            templates.extend(
                np.asarray(matcher.models.embedder.get(scaled, face.kps), dtype=np.float32)
                for face in faces
                if face.score >= RIVAL_MIN_SCORE and face.width >= matcher.limits.min_face_px
            )
    return templates


def video_frames(path: Path, count: int) -> list[np.ndarray]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = []
    for index in range(count if total > 0 else 0):
        capture.set(cv2.CAP_PROP_POS_FRAMES, int((index + 0.5) * total / count))
        ok, frame = capture.read()
        if ok:
            frames.append(frame)
    capture.release()
    return frames


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


def searches(templates: dict[str, list[np.ndarray]], distractors: int, model: str, seed: int = 7) -> tuple[list[Search], list[int], dict]:
    """Every mated search (an identity's photos after the first, against the first photos of all and the
    distractors), the gallery sizes, and the score samples for the report."""
    names = [name for name, found in templates.items() if found]
    enrolled = np.stack([templates[name][0] for name in names])
    sizes = [0] + [10**e for e in range(3, 12) if 10**e < distractors] + ([distractors] if distractors else [])
    rng = np.random.default_rng(seed)
    rows: list[Search] = []
    mated_scores, impostor_scores, distractor_best, distractor_sample = [], [], [], []
    for index, name in enumerate(names):
        probes = np.stack(templates[name][1:]) if len(templates[name]) > 1 else np.empty((0, enrolled.shape[1]), np.float32)
        if not len(probes):
            continue
        others = np.stack([t for other in names if other != name for t in templates[other]])
        real = probes @ enrolled.T  # probes x identities
        maxima = distractor_maxima(probes, others, distractors, sizes, model, rng, distractor_sample) if distractors else np.full((len(probes), len(sizes)), -1.0)
        for p in range(len(probes)):
            other_real = np.delete(real[p], index)
            rows.append(Search(name, float(real[p, index]), float(other_real.max()) if len(other_real) else -1.0, maxima[p], p + 1))
            mated_scores.append(float(real[p, index]))
            impostor_scores.extend(float(s) for s in other_real)
            distractor_best.append(float(maxima[p, -1]))
    samples = {
        "mated": _summary(np.asarray(mated_scores)),
        "real_impostor": _summary(np.asarray(impostor_scores)),
        "distractor": _summary(np.asarray(distractor_sample)),
        "highest_distractor_per_search": _summary(np.asarray(distractor_best)) if distractors else None,
    }
    return rows, sizes, samples


@dataclass(frozen=True)
class Search:
    identity: str
    mate: float  # the score of its own identity's enrolled photo
    other: float  # the best score among the other identities' enrolled photos
    maxima: np.ndarray  # the best distractor score within each gallery size
    position: int = 1  # which of its identity's photos searched (1: the second, the first being enrolled)

    def found(self, threshold: float, column: int = -1) -> bool:
        return bool(self.mate >= threshold and self.mate > max(self.other, self.maxima[column]))

    def false_positive(self, threshold: float, column: int = -1) -> bool:
        """The same search without its own identity returns someone."""
        return bool(max(self.other, self.maxima[column]) >= threshold)


def _second_photos(rows: list[Search], threshold: float) -> dict:
    """Each identity's second photo searched against its first: the protocol of issue 27's must-show."""
    second = [row for row in rows if row.position == 1]
    found = [row for row in second if row.found(threshold)]
    return {
        "searched": len(second),
        "found": len(found),
        "other_identity_returned": sum(row.false_positive(threshold) for row in second),
        "lowest_mate": round(min(row.mate for row in second), 4) if second else None,
    }


def evaluate(templates: dict[str, list[np.ndarray]], threshold: float, distractors: int, model: str, seed: int = 7, far: float | None = None) -> dict:
    rows, sizes, samples = searches(templates, distractors, model, seed)
    names = [name for name, found in templates.items() if found]
    by_size = []
    for column, size in enumerate(sizes):
        found = sum(row.found(threshold, column) for row in rows)
        false_positive = sum(row.false_positive(threshold, column) for row in rows)
        by_size.append({
            "distractors": size,
            "gallery_size": len(names) + size,
            "fnir": round(1 - found / len(rows), 6) if rows else None,
            "fnir_95": wilson(len(rows) - found, len(rows)),
            "fpir": round(false_positive / len(rows), 6) if rows else None,
            "fpir_95": wilson(false_positive, len(rows)),
            "non_mated_false_positives": false_positive,
        })
    by_threshold = []  # the same searches at the full gallery, at other thresholds
    for level in sorted({round(threshold, 4), *(round(x, 2) for x in np.arange(0.30, 0.461, 0.02))}):
        found = sum(row.found(level) for row in rows)
        false_positive = sum(row.false_positive(level) for row in rows)
        by_threshold.append({"threshold": level, "fnir": round(1 - found / len(rows), 6), "fpir": round(false_positive / len(rows), 6)} if rows else {})
    report = {
        "identities": len(names),
        "enrolled": len(names),
        "mated_searches": len(rows),
        "non_mated_searches": len(rows),
        "threshold": threshold,
        "distractors": distractors,
        "distractor_model": model,
        "fnir": by_size[-1]["fnir"],
        "fnir_95": by_size[-1]["fnir_95"],
        "fpir": by_size[-1]["fpir"],
        "fpir_95": by_size[-1]["fpir_95"],
        "missed": [f"{row.identity}: {row.mate:.4f}" for row in rows if not row.found(threshold)],
        "second_photos": _second_photos(rows, threshold),
        "other_identity_returned": sum(row.false_positive(threshold) for row in rows),
        "by_gallery_size": by_size,
        "by_threshold": by_threshold,
        "scores": samples,
    }
    pairs = impostor_pairs(templates)
    if far is not None and len(pairs) * TAIL_TOP >= MIN_TAIL_POINTS:
        tail = fit_tail(pairs, len(names))
        report["tail"] = {**asdict(tail), "far": far, "threshold": tail.threshold_for(far)}
        report["tail_fpir_by_gallery_size"] = {  # what the tail predicts at the threshold in use
            str(size): round(1 - (1 - tail.far_at(threshold)) ** size, 6) for size in (10**3, 10**4, 10**5, 10**6)
        }
        report["tail_far_for_fpir_1_percent"] = {  # GALLERY_FAR for another gallery size, and its threshold
            str(size): {"far": float(f"{per_comparison_far(0.01, size):.3g}"), "threshold": tail.threshold_for(per_comparison_far(0.01, size))}
            for size in (10**4, 10**5, 10**6)
        }
        enough = all(len(impostor_pairs(templates, without=name)) * TAIL_TOP >= MIN_TAIL_POINTS for name in names)
        report["cross_validation"] = cross_validate(templates, rows, sizes, far) if enough else None  # else too few pairs to fit
    return report


def evaluate_impostors(templates: dict[str, list[np.ndarray]], impostors: list[np.ndarray], threshold: float, distractors: int, model: str, seed: int = 11) -> dict:
    """Faces of people outside the identities, searched in the gallery of enrolled photos padded with
    `distractors` (FPIR), and compared with every identity photo (the highest scores, and the pairs above
    the tail's thresholds against what the tail fitted on the identity photos predicts)."""
    names = [name for name, found in templates.items() if found]
    probes = unit(np.stack(impostors).astype(np.float32))
    everyone = np.stack([t for name in names for t in templates[name]])
    pairs = probes @ everyone.T  # faces x identity photos
    best_real = (probes @ np.stack([templates[name][0] for name in names]).T).max(axis=1)
    best = best_real
    if distractors:
        maxima = distractor_maxima(probes, everyone, distractors, [distractors], model, np.random.default_rng(seed), [])
        best = np.maximum(best_real, maxima[:, 0])
    false_positive = int((best >= threshold).sum())
    report = {
        "faces": len(probes),
        "distractors": distractors,
        "fpir": round(false_positive / len(probes), 6),
        "fpir_95": wilson(false_positive, len(probes)),
        "real_identity_returned": int((best_real >= threshold).sum()),
        "pairs_with_identity_photos": int(pairs.size),
        "highest_pair": round(float(pairs.max()), 4),
        "pairs_above_threshold": int((pairs >= threshold).sum()),
        "highest_per_search": _summary(best),
    }
    if len(impostor_pairs(templates)) * TAIL_TOP >= MIN_TAIL_POINTS:
        tail = fit_tail(impostor_pairs(templates), len(names))
        report["pairs_above_tail"] = {  # observed against what the tail fitted on the identity photos predicts
            f"{level:g}": {"observed": int((pairs >= tail.threshold_for(level)).sum()), "expected": round(level * pairs.size, 1)} for level in (1e-2, 1e-3, 1e-4)
        }
    return report


# -- the impostor tail and the threshold it gives a gallery ---------------------------------------

TAIL_TOP = 0.1  # the highest tenth of the impostor scores: the fit follows the tail, not the bulk
MIN_TAIL_POINTS = 20  # fewer scores in that tenth make no line worth extrapolating


def impostor_pairs(templates: dict[str, list[np.ndarray]], without: str | None = None) -> np.ndarray:
    """Every photo against every photo of another identity (each pair once), `without` one identity."""
    names = [name for name, found in templates.items() if found and name != without]
    if len(names) < 2:
        return np.empty(0)
    rows = np.stack([t for name in names for t in templates[name]])
    rows = unit(rows.astype(np.float64))
    labels = np.array([i for i, name in enumerate(names) for _ in templates[name]])
    scores = rows @ rows.T
    upper = np.triu_indices(len(rows), 1)
    return scores[upper][labels[upper[0]] != labels[upper[1]]]


def fit_tail(scores: np.ndarray, identities: int, top: float = TAIL_TOP) -> ImpostorTail:
    """A normal distribution through the highest `top` of the impostor scores on normal probability
    paper (a least-squares line of score against the normal quantile of its plotting position): where
    the real tail is heavier than a normal fitted to all scores, the line is steeper, so extrapolating
    it is the more cautious."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    count = len(ordered)
    kept = int(np.ceil(count * top))
    if kept < MIN_TAIL_POINTS:
        raise ValueError(f"{count} impostor pairs are too few to fit a tail (the highest {top:.0%} must hold {MIN_TAIL_POINTS})")
    positions = (np.arange(count - kept, count) + 0.5) / count
    quantiles = np.array([NormalDist().inv_cdf(float(q)) for q in positions])
    std, mean = np.polyfit(quantiles, ordered[count - kept :], 1)
    return ImpostorTail(round(float(mean), 5), round(float(std), 5), top, count, identities)


def per_comparison_far(fpir: float, gallery_size: int) -> float:
    """The false-accept rate per comparison at which a search of `gallery_size` strangers returns one with
    probability `fpir` (independent comparisons): 1 - (1 - FAR)^N = FPIR, about FPIR / N."""
    return 1 - (1 - fpir) ** (1 / gallery_size)


def cross_validate(templates: dict[str, list[np.ndarray]], rows: list[Search], sizes: list[int], far: float) -> dict:
    """Leave one identity out: the tail fitted without an identity sets the threshold its searches are
    judged at, so no search is judged at a threshold its own faces helped choose. Also checks the fitted
    tail against the held-out identity's real impostor pairs where they can be counted (FAR 1e-2, 1e-3)."""
    names = [name for name, found in templates.items() if found]
    thresholds, checks = {}, {1e-2: [0, 0.0], 1e-3: [0, 0.0]}  # FAR -> [observed, expected] held-out pairs above
    for name in names:
        tail = fit_tail(impostor_pairs(templates, without=name), len(names) - 1)
        thresholds[name] = tail.threshold_for(far)
        own = unit(np.stack(templates[name]).astype(np.float64))
        others = unit(np.stack([t for other in names if other != name for t in templates[other]]).astype(np.float64))
        held_out = (own @ others.T).ravel()
        for level, counts in checks.items():
            counts[0] += int((held_out >= tail.threshold_for(level)).sum())
            counts[1] += level * len(held_out)
    by_size = []
    for column, size in enumerate(sizes):
        missed = sum(not row.found(thresholds[row.identity], column) for row in rows)
        false_positive = sum(row.false_positive(thresholds[row.identity], column) for row in rows)
        by_size.append({
            "distractors": size,
            "fnir": round(missed / len(rows), 6) if rows else None,
            "fnir_95": wilson(missed, len(rows)),
            "fpir": round(false_positive / len(rows), 6) if rows else None,
            "fpir_95": wilson(false_positive, len(rows)),
        })
    values = sorted(thresholds.values())
    return {
        "method": "leave one identity out: tail fitted without the identity, its searches judged at that tail's threshold",
        "far": far,
        "thresholds": {"min": values[0], "median": values[len(values) // 2], "max": values[-1]},
        "fnir": by_size[-1]["fnir"],
        "fnir_95": by_size[-1]["fnir_95"],
        "fpir": by_size[-1]["fpir"],
        "fpir_95": by_size[-1]["fpir_95"],
        "missed": [f"{row.identity}: {row.mate:.4f} < {thresholds[row.identity]}" for row in rows if not row.found(thresholds[row.identity])],
        "by_gallery_size": by_size,
        "held_out_impostor_pairs_above": {f"{level:g}": {"observed": observed, "expected": round(expected, 1)} for level, (observed, expected) in checks.items()},
    }


def wilson(events: int, trials: int, z: float = 1.96) -> list[float] | None:
    """The 95 % Wilson score interval of a rate (searches taken as independent: an identity's searches
    are not quite, so read it as a lower bound on the uncertainty)."""
    if not trials:
        return None
    rate = events / trials
    centre = (rate + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return [round(max(0.0, float(centre - half)), 4), round(min(1.0, float(centre + half)), 4)]


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
    if args.impostors and not Path(args.impostors).is_dir():
        return fail("bad_impostors", f"{args.impostors} is not a folder", args.json)
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
    report = evaluate(templates, threshold, args.distractors, args.model, far=settings.gallery_far)
    report.update({"far": far, "photos_without_a_face": failed, "photos": str(root)})
    if args.impostors:
        impostors = embed_impostors(matcher, Path(args.impostors))
        if not impostors:
            return fail("bad_impostors", f"no usable face in the photos or videos under {args.impostors}", args.json)
        report["impostors"] = evaluate_impostors(templates, impostors, threshold, args.distractors, args.model)
    if args.write_calibration:
        try:
            fitted = fit_tail(impostor_pairs(templates), report["identities"])
        except ValueError as error:
            return fail("too_few_identities", str(error), args.json)
        replace(calibration, tail=fitted).save(args.write_calibration)
        report["calibration_written"] = args.write_calibration
    if args.json:
        print_json(report)
    else:
        print(f"threshold {threshold} (FAR {far or 'not from the calibration'}); {report['mated_searches']} searches of {report['identities']} identities")
        for row in report["by_gallery_size"]:
            print(f"  {row['distractors']:>9} distractors: FNIR {row['fnir']} {row['fnir_95']}  FPIR {row['fpir']} {row['fpir_95']}")
        second = report["second_photos"]
        print(f"each identity's second photo: {second['found']} of {second['searched']} found, lowest {second['lowest_mate']}, "
              f"another identity returned {second['other_identity_returned']}; missed overall: {report['missed']}")
        if "cross_validation" in report:
            cv = report["cross_validation"]
            print(f"leave one identity out at FAR {cv['far']:g} (thresholds {cv['thresholds']}): FNIR {cv['fnir']} {cv['fnir_95']}  FPIR {cv['fpir']} {cv['fpir_95']}")
        if "impostors" in report:
            seen = report["impostors"]
            print(f"{seen['faces']} impostor faces: FPIR {seen['fpir']} {seen['fpir_95']}, highest pair {seen['highest_pair']}, tail check {seen.get('pairs_above_tail')}")
        print(f"scores: {report['scores']}")
    return 0


def add_parser(sub) -> None:
    parser = sub.add_parser("eval-duplicates", help="measure the face gallery's 1:N search (FPIR, FNIR) on folders of photos, one per identity")
    parser.add_argument("--photos", required=True, help="a folder with one folder of photos per identity (folders starting with _ are skipped)")
    parser.add_argument("--distractors", type=int, default=100_000, help="synthetic templates padding the gallery (default 100000)")
    parser.add_argument("--model", choices=["matched", "random"], default="matched", help="how distractors are made (see the module's notes)")
    parser.add_argument("--far", type=float, help="the calibration's FAR for the threshold (default: GALLERY_THRESHOLD, else GALLERY_FAR)")
    parser.add_argument("--threshold", type=float, help="a cosine threshold instead")
    parser.add_argument("--impostors", help="a folder of photos and videos of people who are none of the identities, searched as extra non-mated faces")
    parser.add_argument("--write-calibration", dest="write_calibration", help="write the calibration in use plus the impostor tail fitted on these photos to this file")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)
