"""Passive presentation-attack detection: the MiniFASNetV2 + MiniFASNetV1SE ensemble (ONNX Runtime, CPU).

Minivision's Silent-Face-Anti-Spoofing models (Apache-2.0) as ONNX files. They are not in any wheel: a
deployer puts them in a folder (`REALNAME_PAD_MODEL_DIR`, `python -m server models ...`) and they are
checked by SHA-256 before use. The preprocessing is the original code's, exactly (see SOURCES.md next to
the files): these models were trained on that crop, and a different one ruins their scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import ModelFileError, verify_sha256

INPUT_SIZE = 80


@dataclass(frozen=True)
class PadModelFile:
    name: str
    sha256: str
    size: int
    crop_scale: float  # how many face boxes wide the model's input region is


MINIFASNET_V2 = PadModelFile("MiniFASNetV2.onnx", "4eed38f0bde33c9b805942a5f25e42ce1161e2bda545254be622be957727794e", 1743561, 2.7)
MINIFASNET_V1SE = PadModelFile("MiniFASNetV1SE.onnx", "d819a69bac6b9ade2a0f4d9b60b618e1260f7bf3ba1fddff6c5d82131cb1083f", 1742315, 4.0)
PAD_FILES = (MINIFASNET_V2, MINIFASNET_V1SE)
LIVE_INDEX = 1  # softmax index of "live"; 0 and 2 are two kinds of attack


def integer_box(box_xyxy) -> tuple[int, int, int, int]:
    """A detector box x0,y0,x1,y1 as the original code's integer [x, y, w, h] (inclusive pixel width)."""
    x0, y0, x1, y1 = (float(v) for v in box_xyxy[:4])
    return int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)


def crop_region(frame_w: int, frame_h: int, box: tuple[int, int, int, int], scale: float) -> tuple[int, int, int, int]:
    """The region (left, top, right, bottom, inclusive) `scale` boxes wide around the box centre.

    The scale is reduced so the region fits the frame, and a region crossing an edge is shifted back
    inside rather than clamped, as in Minivision's `CropImage._get_new_box`.
    """
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise ValueError("empty face box")
    scale = min((frame_h - 1) / h, (frame_w - 1) / w, scale)
    new_w, new_h = w * scale, h * scale
    cx, cy = x + w / 2, y + h / 2
    left, top = cx - new_w / 2, cy - new_h / 2
    right, bottom = cx + new_w / 2, cy + new_h / 2
    if left < 0:
        right -= left
        left = 0
    if top < 0:
        bottom -= top
        top = 0
    if right > frame_w - 1:
        left -= right - frame_w + 1
        right = frame_w - 1
    if bottom > frame_h - 1:
        top -= bottom - frame_h + 1
        bottom = frame_h - 1
    return int(left), int(top), int(right), int(bottom)


def model_input(bgr: np.ndarray, box: tuple[int, int, int, int], scale: float, gain: float = 1.0) -> np.ndarray:
    """The 1x3x80x80 float32 BGR 0..255 tensor for one model, its light multiplied by `gain`."""
    import cv2

    h, w = bgr.shape[:2]
    left, top, right, bottom = crop_region(w, h, box, scale)
    region = bgr[top : bottom + 1, left : right + 1]
    resized = cv2.resize(region, (INPUT_SIZE, INPUT_SIZE))  # bilinear, not aspect-preserving, as trained
    tensor = np.ascontiguousarray(resized.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)
    return np.minimum(tensor * gain, 255.0) if gain != 1.0 else tensor


# Where SCRFD looks for PAD's face box (liveness/analyzer.py `pad_box`): the live check has MediaPipe's 478
# landmarks of every PAD frame already, so SCRFD searches a square around their box instead of the whole frame
# at 640 px. x0, y0, x1, y1 as fractions of the landmarks' extent from its top-left corner, the least-squares
# fit to scrfd_500m's box on the 2647 frames PAD would score of the 131 PAD clips through VP8 at 600 kbps (every
# 3rd frame); leave-one-person-out IoU with SCRFD's box: median 0.936, 5th percentile 0.874, the fractions
# within 0.005 across the folds (server/spoof/calibration/minifasnet-ensemble.md, "The face box").
BOX_FRACTIONS = (0.0128, -0.1267, 0.9910, 1.0094)


def landmark_box(points: np.ndarray, width: int, height: int) -> tuple[float, float, float, float]:
    """The face box x0, y0, x1, y1 in pixels of a width x height frame from MediaPipe landmarks (N x 2+,
    normalised): near the box SCRFD gives (a few % off it, differently for each person: not close enough
    for the networks' crop, see `pad_box`)."""
    x, y = points[:, 0] * width, points[:, 1] * height
    left, top = float(x.min()), float(y.min())
    w, h = float(x.max()) - left, float(y.max()) - top
    fx0, fy0, fx1, fy1 = BOX_FRACTIONS
    return left + fx0 * w, top + fy0 * h, left + fx1 * w, top + fy1 * h


@dataclass(frozen=True)
class Exposure:
    """A dim face is brightened before scoring, as a camera's auto-exposure would have: the networks were
    trained on well-exposed faces and read a dark one as a presentation. Never darkened, gain bounded."""

    target_luma: float = 120.0
    max_gain: float = 4.0

    def gain(self, bgr: np.ndarray, box: tuple[int, int, int, int]) -> float:
        face = face_region(bgr, box)
        if face.size == 0:
            return 1.0
        luma = float(face[..., 0].mean() * 0.114 + face[..., 1].mean() * 0.587 + face[..., 2].mean() * 0.299)
        return self.gain_for(luma)

    def gain_for(self, luma: float) -> float:
        return min(self.max_gain, max(1.0, self.target_luma / max(luma, 1.0)))

    def noise(self, bgr: np.ndarray, box: tuple[int, int, int, int]) -> float:
        """The face's noise as the networks see it: its luma's noise level times the gain that brightens it.
        A dim room's sensor noise, brightened, is what hides a face's texture; darker skin in ordinary light
        is as dark but clean (its noise stays low after the same gain)."""
        face = face_region(bgr, box)
        if face.shape[0] < 3 or face.shape[1] < 3:
            return 0.0
        grey = face[..., 0] * 0.114 + face[..., 1] * 0.587 + face[..., 2] * 0.299
        return noise_level(grey) * self.gain_for(float(grey.mean()))


def face_region(bgr: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return bgr[max(0, y) : max(0, y) + max(1, h), max(0, x) : max(0, x) + max(1, w)]


def noise_level(grey: np.ndarray) -> float:
    """Immerkaer's fast noise estimate (1996), in grey levels: the standard deviation of white noise from the
    mean absolute response to a 3x3 mask (the difference of two Laplacians) that cancels smooth structure
    and linear gradients, so a face's shading and skin tone leave it near zero and sensor noise does not."""
    g = np.asarray(grey, dtype=np.float32)
    if g.shape[0] < 3 or g.shape[1] < 3:
        return 0.0
    response = (g[:-2, :-2] + g[:-2, 2:] + g[2:, :-2] + g[2:, 2:]
                - 2 * (g[:-2, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] + g[2:, 1:-1]) + 4 * g[1:-1, 1:-1])
    return float(np.sqrt(np.pi / 2) * np.abs(response).mean() / 6)


DETAIL_SIGMA = 1.0  # px: the luma is smoothed this much before the Laplacian, so single-pixel noise weighs less than edges


def detail_level(grey: np.ndarray) -> float:
    """The face's fine detail over its noise: the variance of the Laplacian of the luma (smoothed by
    DETAIL_SIGMA) over the squared noise estimate (`noise_level`, at least 0.3). A gain scales both alike,
    so no exposure rule is needed. A face filmed through a second optic (a print, recaptured) has lost the
    fine edges a live face shows to the camera: in a dim room, where the noise hides the texture the
    networks read, it measures little more than the noise's own response; a screen's sub-pixels and
    moire measure more, not less."""
    import cv2

    g = np.asarray(grey, dtype=np.float32)
    if g.shape[0] < 8 or g.shape[1] < 8:
        return 0.0
    response = cv2.Laplacian(cv2.GaussianBlur(g, (0, 0), DETAIL_SIGMA), cv2.CV_32F)
    return float(response.var() / max(noise_level(g), 0.3) ** 2)


def face_detail(bgr: np.ndarray, box: tuple[int, int, int, int]) -> float | None:
    """`detail_level` of the face box's luma; None for a box too small to tell."""
    face = face_region(bgr, box).astype(np.float32)
    if face.shape[0] < 8 or face.shape[1] < 8:
        return None
    return detail_level(face[..., 0] * 0.114 + face[..., 1] * 0.587 + face[..., 2] * 0.299)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


class MiniFASNet:
    """One of the two networks: a face region at its own scale -> softmax over (attack, live, attack)."""

    def __init__(self, model_file: Path, spec: PadModelFile) -> None:
        self.model_file = Path(model_file)
        self.spec = spec
        self._session = None
        self._input_name = "input"

    def prepare(self) -> MiniFASNet:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # Tiny networks on a few frames per check: one thread each keeps them off the other workers' cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(self.model_file), options, providers=["CPUExecutionProvider"])
        self._input_name = self._session.get_inputs()[0].name
        return self

    def get(self, bgr_full_frame: np.ndarray, box: tuple[int, int, int, int], gain: float = 1.0) -> np.ndarray:
        assert self._session is not None, "call prepare() first"
        tensor = model_input(bgr_full_frame, box, self.spec.crop_scale, gain)
        logits = self._session.run(None, {self._input_name: tensor})[0]
        return softmax(np.asarray(logits, dtype=np.float64).reshape(-1))


class PadEnsemble:
    """The live score of a face in a full camera frame (`combine_live` of the networks' live probabilities)."""

    def __init__(self, folder: Path, exposure: Exposure | None = Exposure()) -> None:
        self.folder = Path(folder)
        self.models = [MiniFASNet(self.folder / spec.name, spec) for spec in PAD_FILES]
        self.exposure = exposure  # None: score the pixels as they came

    def prepare(self) -> PadEnsemble:
        for model in self.models:
            model.prepare()
        return self

    def get(self, bgr_full_frame: np.ndarray, box_xyxy) -> float:
        """Live score in 0..1 (1 = live) of the face at `box_xyxy` (pixels) in the whole BGR frame: only
        the networks `combine_live` reads are run."""
        return combine_live(self.live_scores(bgr_full_frame, box_xyxy, networks=DECIDING_NETWORKS))

    def noise(self, bgr_full_frame: np.ndarray, box_xyxy) -> float | None:
        """The face's noise after the exposure rule (Exposure.noise); None when the rule is off."""
        return self.exposure.noise(bgr_full_frame, integer_box(box_xyxy)) if self.exposure is not None else None

    def detail(self, bgr_full_frame: np.ndarray, box_xyxy) -> float | None:
        """The face's fine detail over its noise (`face_detail`)."""
        return face_detail(bgr_full_frame, integer_box(box_xyxy))

    def live_scores(self, bgr_full_frame: np.ndarray, box_xyxy, exposure: Exposure | None | bool = True,
                    networks: int | None = None) -> tuple[float, ...]:
        """Each network's live probability (PAD_FILES order; the first `networks` of them, None: all), each
        on its own crop scale; `exposure` False scores the raw pixels whatever the ensemble's setting."""
        box = integer_box(box_xyxy)
        rule = self.exposure if exposure is True else (exposure or None)
        gain = rule.gain(bgr_full_frame, box) if rule is not None else 1.0
        return tuple(float(model.get(bgr_full_frame, box, gain)[LIVE_INDEX]) for model in self.models[:networks])


DECIDING_NETWORKS = 1  # the first of PAD_FILES: what `combine_live` reads, all the live check runs


def combine_live(live: tuple[float, ...]) -> float:
    """The live score: MiniFASNetV2's (crop 2.7 boxes). Minivision's code averages both networks; under
    leave-one-person-out cross-validation V1SE's wider crop (4.0) cost separation between dim genuine faces
    and attacks (docs/anti-spoofing.md), so `eval-pad` scores and records it but it does not decide, and
    the live check does not run it."""
    return float(live[0])


def locate_pad_models(folder: str | Path) -> Path:
    """The folder, once both files are present with the expected SHA-256s."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ModelFileError(f"PAD model folder {path} does not exist (see `python -m server models`)")
    for spec in PAD_FILES:
        model_file = path / spec.name
        if not model_file.is_file():
            raise ModelFileError(f"PAD model {spec.name} is missing from {path} (see `python -m server models`)")
        verify_sha256(model_file, spec.sha256)
    return path


def load_pad(folder: str | Path) -> PadEnsemble:
    return PadEnsemble(locate_pad_models(folder)).prepare()
