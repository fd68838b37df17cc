"""Decoding uploaded photos: only real JPEG, PNG or WebP, within size and pixel limits, upright."""

from __future__ import annotations

import io
import warnings

import numpy as np

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MIN_SIDE = 48


class ImageError(Exception):
    """An upload that cannot be used; `code` is stable and machine-readable, `status` an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def sniff_format(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def decode_image(
    data: bytes,
    max_bytes: int = 10 * 1024 * 1024,
    max_pixels: int = 40_000_000,
    declared_type: str | None = None,
) -> np.ndarray:
    """Bytes of an upload -> upright BGR uint8 array, or ImageError saying exactly what is wrong."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if len(data) > max_bytes:
        raise ImageError("too_large", f"the file is larger than {max_bytes // (1024 * 1024)} MB", 413)
    if not data:
        raise ImageError("empty_file", "the file is empty", 400)
    kind = sniff_format(data)
    if kind is None:
        raise ImageError("unsupported_type", "only JPEG, PNG and WebP photos are accepted", 415)
    declared = (declared_type or "").split(";")[0].strip().lower()
    if declared.startswith("image/") and declared not in ("image/*",) and _normalise(declared) != FORMATS[kind]:
        raise ImageError("type_mismatch", f"the file says it is {declared} but its content is {FORMATS[kind]}", 415)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[kind])
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError("too_many_pixels", f"the photo has more than {max_pixels // 1_000_000} million pixels", 413)
            image.seek(0)
            image = ImageOps.exif_transpose(image)
            image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError("too_many_pixels", "the photo has too many pixels", 413) from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as error:
        raise ImageError("unreadable_image", "the photo could not be read; it may be damaged", 422) from error
    if min(image.size) < MIN_SIDE:
        raise ImageError("image_too_small", f"the photo is smaller than {MIN_SIDE} pixels on a side", 422)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        image = background
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _normalise(content_type: str) -> str:
    return {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}.get(content_type, content_type)
