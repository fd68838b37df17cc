"""Text detection and recognition with the PP-OCRv6 models (Apache-2.0) from the pinned rapidocr wheel.

The two ONNX models run here directly on onnxruntime and OpenCV, as rapidocr runs them (its defaults:
DB detection at a short side of at least 736 px, boxes grown by 1.6 x area / perimeter, CTC recognition
at 48 px high, lines under 0.5 confidence dropped). rapidocr itself is never imported: it requires
opencv-python-headless, a second `cv2` (see server/models/commands.py). The angle classifier is left out:
a document is photographed the right way up, or is turned by the customer when asked to retake.

A reading is bounded whatever the photo (a crafted 4000 px photo full of text cost 40 s before): the photo
is read at `max_side` at most, only `max_boxes` lines go to the recogniser, each cut to `max_line_ratio`
times its height, and the recogniser stops once the reading has used `budget_s` of CPU. A reading cut
short by any of these says so (`Scan.complete`); what was read until then is kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from ..models import files
from .results import OcrLine


@dataclass(frozen=True)
class Scan:
    lines: list[OcrLine]
    complete: bool  # False: a bound cut the reading short (too many lines, too long ones, out of time)


@dataclass(frozen=True)
class OcrSettings:
    min_side: int = 736  # detection input's short side (scaled up to it, never down)
    max_side: int = 2000  # detection input's long side
    max_read_side: int = 1600  # a larger photo is scaled down before anything is read (a card stays legible)
    max_boxes: int = 40  # lines recognised, the largest first (a card or a passport page has under 25)
    max_line_ratio: float = 30.0  # a line's width in heights sent to the recogniser (an MRZ line is about 20)
    budget_s: float = 3.0  # CPU seconds of one reading (a card takes 1.2 to 1.5)
    pixel_threshold: float = 0.3
    box_threshold: float = 0.5
    unclip_ratio: float = 1.6
    text_score: float = 0.5
    line_height: int = 48
    batch: int = 6
    threads: int = 1  # one core: a reading waits rather than slow down live checks


def ocr_model_files(models_dir: str = "") -> tuple[Path, Path]:
    """The detector and recogniser that `python -m server models install` put in the models folder."""
    folder = [files.models_dir(models_dir)]
    return files.OCR_DETECTOR.locate(folder), files.OCR_RECOGNIZER.locate(folder)


class TextReader:
    """`read(bgr)` -> the lines of text in a photo, top to bottom, with confidences and boxes."""

    def __init__(self, detector_file: Path, recognizer_file: Path, settings: OcrSettings | None = None) -> None:
        self.settings = settings or OcrSettings()
        self.detector = _session(detector_file, self.settings.threads)
        self.recognizer = _session(recognizer_file, self.settings.threads)
        characters = self.recognizer.get_modelmeta().custom_metadata_map["character"].splitlines()
        self.characters = ["", *characters, " "]  # CTC blank first; the space the dictionary leaves out last

    @classmethod
    def from_models_dir(cls, models_dir: str = "") -> TextReader:
        return cls(*ocr_model_files(models_dir))

    def read(self, bgr: np.ndarray) -> list[OcrLine]:
        return self.scan(bgr).lines

    def scan(self, bgr: np.ndarray) -> Scan:
        """The lines of text, within the bounds of the settings (boxes in the scaled-down photo's pixels)."""
        s = self.settings
        deadline = time.thread_time() + s.budget_s  # onnxruntime runs on this thread (one intra-op thread)
        bgr = bounded(bgr, s.max_read_side)
        boxes = self.detect(bgr)
        kept = largest(boxes, s.max_boxes)
        crops = [crop_line(bgr, box, s.max_line_ratio) for box in kept]
        cut = any(crop.shape[1] >= s.max_line_ratio * crop.shape[0] for crop in crops)  # cut to exactly that
        results = self.recognise(crops, deadline)
        lines = []
        for box, result in zip(kept, results, strict=True):
            if result is not None and result[1] >= s.text_score and result[0].strip():
                xs, ys = box[:, 0], box[:, 1]
                lines.append(OcrLine(result[0].strip(), result[1], (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))))
        complete = len(kept) == len(boxes) and not cut and None not in results
        return Scan(lines, complete)

    def detect(self, bgr: np.ndarray) -> list[np.ndarray]:
        """Quadrilaterals (4 x 2, clockwise from top left) around lines of text, in reading order."""
        s = self.settings
        height, width = bgr.shape[:2]
        ratio = max(1.0, s.min_side / min(height, width))
        ratio = min(ratio, s.max_side / max(height, width))
        size_h, size_w = max(32, round(height * ratio / 32) * 32), max(32, round(width * ratio / 32) * 32)
        resized = cv2.resize(bgr, (size_w, size_h)).astype(np.float32)
        blob = ((resized / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None]
        probability = self.detector.run(None, {self.detector.get_inputs()[0].name: blob})[0][0, 0]
        mask = cv2.dilate((probability > s.pixel_threshold).astype(np.uint8), np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(mask * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        boxes = []
        for contour in contours[:1000]:
            rect = cv2.minAreaRect(contour)
            if min(rect[1]) < 3 or _mean_inside(probability, cv2.boxPoints(rect)) < s.box_threshold:
                continue
            (cx, cy), (w, h), angle = rect
            grow = w * h * s.unclip_ratio / (2 * (w + h))  # the offset rapidocr's pyclipper unclip uses
            if min(w, h) + 2 * grow < 5:
                continue
            points = cv2.boxPoints(((cx, cy), (w + 2 * grow, h + 2 * grow), angle))
            points[:, 0] = np.clip(np.round(points[:, 0] * width / size_w), 0, width - 1)
            points[:, 1] = np.clip(np.round(points[:, 1] * height / size_h), 0, height - 1)
            box = clockwise(points)
            if np.linalg.norm(box[0] - box[1]) > 3 and np.linalg.norm(box[0] - box[3]) > 3:
                boxes.append(box)
        return reading_order(boxes)

    def recognise(self, crops: list[np.ndarray], deadline: float = math.inf) -> list[tuple[str, float] | None]:
        """(text, confidence) per crop; None for the crops left unread when the thread's CPU time passed `deadline`."""
        results: list[tuple[str, float] | None] = [None] * len(crops)
        order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / crops[i].shape[0])
        height = self.settings.line_height
        for start in range(0, len(order), self.settings.batch):
            if time.thread_time() > deadline:
                break
            chunk = order[start : start + self.settings.batch]
            widest = max([320 / height] + [crops[i].shape[1] / crops[i].shape[0] for i in chunk])
            width = int(height * widest)
            batch = np.zeros((len(chunk), 3, height, width), np.float32)
            for row, index in enumerate(chunk):
                crop = crops[index]
                fitted = min(width, math.ceil(height * crop.shape[1] / crop.shape[0]))
                line = cv2.resize(crop, (fitted, height)).astype(np.float32)
                batch[row, :, :, :fitted] = ((line / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
            scores = self.recognizer.run(None, {self.recognizer.get_inputs()[0].name: batch})[0]
            for row, index in enumerate(chunk):
                results[index] = self._decode(scores[row])
        return results

    def _decode(self, scores: np.ndarray) -> tuple[str, float]:
        """Greedy CTC: the best character per step, repeats merged, blanks dropped."""
        best, probability = scores.argmax(axis=1), scores.max(axis=1)
        keep = np.ones(len(best), bool)
        keep[1:] = best[1:] != best[:-1]
        keep &= best != 0
        text = "".join(self.characters[i] for i in best[keep] if i < len(self.characters))
        return text, float(probability[keep].mean()) if keep.any() else 0.0


def _session(model_file: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])


def _mean_inside(probability: np.ndarray, points: np.ndarray) -> float:
    h, w = probability.shape
    x0, x1 = int(np.clip(np.floor(points[:, 0].min()), 0, w - 1)), int(np.clip(np.ceil(points[:, 0].max()), 0, w - 1))
    y0, y1 = int(np.clip(np.floor(points[:, 1].min()), 0, h - 1)), int(np.clip(np.ceil(points[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(mask, [(points - [x0, y0]).astype(np.int32)], 1)
    return float(cv2.mean(probability[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def clockwise(points: np.ndarray) -> np.ndarray:
    """Top left, top right, bottom right, bottom left."""
    by_x = points[np.argsort(points[:, 0])]
    left, right = by_x[:2], by_x[2:]
    top_left, bottom_left = left[np.argsort(left[:, 1])]
    top_right, bottom_right = right[np.argsort(right[:, 1])]
    return np.array([top_left, top_right, bottom_right, bottom_left], np.float32)


def reading_order(boxes: list[np.ndarray]) -> list[np.ndarray]:
    """Top to bottom; boxes within 10 px of each other's top, left to right (as PaddleOCR sorts them)."""
    ordered = sorted(boxes, key=lambda b: (b[0][1], b[0][0]))
    for i in range(len(ordered) - 1):
        for j in range(i, -1, -1):
            if abs(ordered[j + 1][0][1] - ordered[j][0][1]) < 10 and ordered[j + 1][0][0] < ordered[j][0][0]:
                ordered[j], ordered[j + 1] = ordered[j + 1], ordered[j]
            else:
                break
    return ordered


def bounded(bgr: np.ndarray, max_side: int) -> np.ndarray:
    """The photo scaled down so that its long side is at most `max_side`."""
    height, width = bgr.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return bgr
    return cv2.resize(bgr, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


def largest(boxes: list[np.ndarray], count: int) -> list[np.ndarray]:
    """The `count` largest boxes, still in reading order."""
    if len(boxes) <= count:
        return boxes
    areas = [cv2.contourArea(box) for box in boxes]
    keep = set(sorted(range(len(boxes)), key=lambda i: -areas[i])[:count])
    return [box for i, box in enumerate(boxes) if i in keep]


def crop_line(bgr: np.ndarray, box: np.ndarray, max_ratio: float = math.inf) -> np.ndarray:
    """The quadrilateral straightened into an upright strip; a tall strip is turned to lie flat. A strip
    longer than `max_ratio` times its height keeps only its start (its end is never warped)."""
    width = int(max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3])))
    height = int(max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2])))
    target = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    tall = height >= 1.5 * width
    longest = max(1.0, max_ratio * (width if tall else height))
    size = (width, int(min(height, longest))) if tall else (int(min(width, longest)), height)
    strip = cv2.warpPerspective(bgr, cv2.getPerspectiveTransform(box.astype(np.float32), target), size, borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    return np.rot90(strip) if tall else strip
