"""Finding the one face to match in a photo, including small printed portraits on photographed ID cards."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RealnameError
from ..models.detector import DetectedFace, FaceDetector
from .images import MAX_SIDE

# A face whose box is at least this fraction of the largest face's area counts as a second person
# (an ID card's small "ghost" portrait is well below it).
SIMILAR_FACE_AREA = 0.45
RIVAL_MIN_SCORE = 0.6


@dataclass(frozen=True)
class FaceQualityLimits:
    """Calibrated on every identity photo in ../shared/media/photos (none may be refused) and on
    deliberately degraded copies (which must be)."""

    min_face_px: float = 36.0  # face box width
    min_sharpness: float = 15.0  # Laplacian variance of the aligned 112 px face (identity photos: 77 and up)
    min_brightness: float = 22.0  # mean luma of the aligned face
    min_contrast: float = 8.0  # luma standard deviation of the aligned face


class FaceError(RealnameError):
    """A photo whose face cannot be used (none, two, too small, dark or blurred)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, 422)


@dataclass(frozen=True)
class FoundFace:
    face: DetectedFace
    image: np.ndarray  # the BGR image the face's coordinates refer to
    other_faces: int  # smaller faces ignored


def detect_all(detector: FaceDetector, bgr: np.ndarray) -> tuple[list[DetectedFace], np.ndarray]:
    """Faces at several scales. Returns the faces and the image their coordinates refer to.

    1. the whole image at the detector's 640 px input;
    2. if nothing: the image padded on every side, since tight portrait crops hide the face's outline;
    3. if still nothing: a 1280 px input, for small portraits in large photos of cards.

    All on a copy at most MAX_SIDE long, so that neither the padding nor the larger input can cost more
    than that copy warrants, whatever array a caller passes.
    """
    bgr = bounded(bgr)
    faces = detector.get(bgr)
    if faces:
        return faces, bgr
    h, w = bgr.shape[:2]
    pad = int(0.4 * max(h, w))
    padded = np.pad(bgr, ((pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=127)
    faces = detector.get(padded)
    if faces:
        return [f.shifted(-pad, -pad) for f in faces], bgr
    if max(h, w) > 640:
        return detector.get(bgr, input_size=(1280, 1280)), bgr
    return [], bgr


def bounded(bgr: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """`bgr` itself when its long side is within `max_side`, else an area-averaged smaller copy."""
    h, w = bgr.shape[:2]
    if max(h, w) <= max_side:
        return bgr
    import cv2

    scale = max_side / max(h, w)
    return cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def find_face(detector: FaceDetector, bgr: np.ndarray) -> FoundFace:
    """The largest face; refuse when there is none, or when a second, whole face is of similar size.

    Faces cut by the photo's edge or only faintly detected (a bystander's shoulder-height profile) do
    not compete: press and phone photos often have them behind the subject.
    """
    faces, image = detect_all(detector, bgr)
    if not faces:
        raise FaceError("no_face", "no face was found in the photo")
    faces.sort(key=lambda f: f.area, reverse=True)
    main = faces[0]
    h, w = image.shape[:2]
    rivals = [
        f
        for f in faces[1:]
        if f.area >= SIMILAR_FACE_AREA * main.area and f.score >= RIVAL_MIN_SCORE and _inside(f, w, h)
    ]
    if rivals:
        raise FaceError("multiple_faces", "the photo shows more than one face; use a photo of one person")
    return FoundFace(face=main, image=image, other_faces=len(faces) - 1)


def _inside(face: DetectedFace, width: int, height: int) -> bool:
    margin = 0.02 * max(width, height)
    x0, y0, x1, y1 = face.box
    return x0 >= -margin and y0 >= -margin and x1 <= width + margin and y1 <= height + margin


def face_quality(aligned: np.ndarray) -> dict[str, float]:
    import cv2

    gray = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    centre = gray[16:-16, 16:-16]  # skip hair and background at the edges of the aligned crop
    return {
        "sharpness": float(cv2.Laplacian(centre, cv2.CV_32F).var()),
        "brightness": float(centre.mean()),
        "contrast": float(centre.std()),
    }


def check_quality(found: FoundFace, aligned: np.ndarray, limits: FaceQualityLimits) -> dict[str, float]:
    quality = face_quality(aligned)
    quality["face_px"] = found.face.width
    if found.face.width < limits.min_face_px:
        raise FaceError("face_too_small", "the face in the photo is too small; take the photo closer")
    if quality["brightness"] < limits.min_brightness or quality["contrast"] < limits.min_contrast:
        raise FaceError("face_too_dark", "the face in the photo is too dark; take it in more light")
    if quality["sharpness"] < limits.min_sharpness:
        raise FaceError("face_too_blurry", "the face in the photo is blurred; hold still and focus")
    return quality
