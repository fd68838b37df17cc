"""Decoding uploaded photos: only real JPEG, PNG or WebP, within size, shape and complexity limits, upright,
and never larger than a bounded working copy.

Everything a file declares about itself (type, size, JPEG scans) is checked on the raw bytes BEFORE any
decoding; only then does Pillow decode it, and what leaves `decode` is at most `max_side` pixels long, so
nothing downstream (detection, padding, the 1280 px pass) ever holds a huge array. `decode_rgb` needs
only Pillow (NumPy is imported where arrays are made), so that it runs in small child processes that
start fast and fit a tight memory limit (see decoding.py).
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import RealnameError

if TYPE_CHECKING:
    import numpy as np

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MIN_SIDE = 48

# The detector looks at 640 px and, for small printed portraits, 1280 px inputs: a 1,600 px copy keeps
# everything the larger pass can use, and its padded copy (0.4 of the long side on each side) stays
# 2,880 px square (25 MB) whatever the upload.
MAX_SIDE = 1600

# ID-1 cards are 1.59:1, phone photos 4:3 to 20:9 (2.22), cinema crops 21:9 (2.33), ultra-wide screenshots
# 32:9 (3.56). Beyond 4:1 an upload is a strip no face photo needs, and a 4:1 bounded copy still has a
# 400 px short side.
MAX_ASPECT = 4.0

# libjpeg's progressive script has 10 scans for colour (6 for grey), scan optimisers (mozjpeg, jpegtran
# -optimize) stay under ~20, and the shared test photos (many cameras and encoders) have at most 14. Each
# scan costs a pass over every block of the image however few bytes it has: a 73 KB file with 3,500 scans
# takes seconds of CPU to decode. 100 is five times the largest real script.
MAX_JPEG_SCANS = 100
# Segments besides the scans and their tables (APPn, DQT, SOF, DRI...): a few dozen in real files.
OTHER_JPEG_SEGMENTS = 1000


class ImageError(RealnameError):
    """An upload that cannot be used; `code` is stable and machine-readable, `status` an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(code, message, status)

    def __reduce__(self):  # crosses the process boundary from the decoding worker intact
        return (type(self), (self.code, self.message, self.status))


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_aspect: float = MAX_ASPECT
    max_jpeg_scans: int = MAX_JPEG_SCANS
    max_side: int = MAX_SIDE  # long side of the copy handed on


@dataclass(frozen=True)
class DecodedImage:
    """An upright RGB picture, at most the bounded size: what crosses back from a decoding process."""

    width: int
    height: int
    rgb: bytes  # rows of R, G, B bytes

    def to_bgr(self) -> np.ndarray:
        import numpy as np

        rgb = np.frombuffer(self.rgb, dtype=np.uint8).reshape(self.height, self.width, 3)
        return np.ascontiguousarray(rgb[:, :, ::-1])


@dataclass(frozen=True)
class ImageHeader:
    """What a file declares about itself, read from its first bytes without decoding it."""

    kind: str  # JPEG, PNG or WEBP
    width: int
    height: int
    scans: int = 1  # JPEG: how many SOS segments


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
    """In-process `decode` with the default shape and complexity limits (CLI tools, evaluation, tests)."""
    return decode(data, declared_type, ImageLimits(max_bytes=max_bytes, max_pixels=max_pixels))


def decode(data: bytes, declared_type: str | None, limits: ImageLimits) -> np.ndarray:
    """Bytes of an upload -> upright BGR uint8 array at most `limits.max_side` long, or ImageError saying
    exactly what is wrong."""
    return decode_rgb(data, declared_type, limits).to_bgr()


def decode_rgb(data: bytes, declared_type: str | None, limits: ImageLimits) -> DecodedImage:
    """`decode` up to the last step, with Pillow alone."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    header = check_header(data, declared_type, limits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[header.kind])
            if image.size != (header.width, header.height):
                raise ImageError("unreadable_image", "the photo could not be read; it may be damaged", 422)
            if header.kind == "JPEG":
                # libjpeg decodes straight at 1/2, 1/4 or 1/8 scale when that still covers the bound.
                image.draft("RGB", _fit(image.size, limits.max_side))
            image.seek(0)
            image.load()
            image = _rgb(image)
            image = _shrunk(image, limits.max_side)
            image = ImageOps.exif_transpose(image)
            return DecodedImage(image.width, image.height, image.tobytes())
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError("too_many_pixels", "the photo has too many pixels", 413) from error
    except MemoryError as error:
        raise ImageError("image_too_complex", "the photo is too complex to process", 422) from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct.error) as error:
        raise ImageError("unreadable_image", "the photo could not be read; it may be damaged", 422) from error


def check_header(data: bytes, declared_type: str | None, limits: ImageLimits) -> ImageHeader:
    """Every check that needs no decoding: size, type, declared dimensions, shape, JPEG scans."""
    if len(data) > limits.max_bytes:
        raise ImageError("too_large", f"the file is larger than {limits.max_bytes // (1024 * 1024)} MB", 413)
    if not data:
        raise ImageError("empty_file", "the file is empty", 400)
    kind = sniff_format(data)
    if kind is None:
        raise ImageError("unsupported_type", "only JPEG, PNG and WebP photos are accepted", 415)
    declared = (declared_type or "").split(";")[0].strip().lower()
    if declared.startswith("image/") and declared not in ("image/*",) and _normalise(declared) != FORMATS[kind]:
        raise ImageError("type_mismatch", f"the file says it is {declared} but its content is {FORMATS[kind]}", 415)
    header = read_header(data, kind, limits.max_jpeg_scans)
    if header is None or header.width <= 0 or header.height <= 0:
        raise ImageError("unreadable_image", "the photo could not be read; it may be damaged", 422)
    if header.scans > limits.max_jpeg_scans:
        raise ImageError("image_too_complex", "the photo is encoded in too many passes to process; please take another", 422)
    if header.width * header.height > limits.max_pixels:
        raise ImageError("too_many_pixels", f"the photo has more than {limits.max_pixels // 1_000_000} million pixels", 413)
    if min(header.width, header.height) < MIN_SIDE:
        raise ImageError("image_too_small", f"the photo is smaller than {MIN_SIDE} pixels on a side", 422)
    if max(header.width, header.height) > limits.max_aspect * min(header.width, header.height):
        raise ImageError("bad_aspect_ratio", f"the photo is more than {limits.max_aspect:g} times as long as it is wide", 422)
    return header


def read_header(data: bytes, kind: str, max_jpeg_scans: int = MAX_JPEG_SCANS) -> ImageHeader | None:
    """The declared size (and JPEG scan count) of a sniffed file; None when the header is missing or cut."""
    if kind == "PNG":
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return ImageHeader("PNG", width, height)
    if kind == "WEBP":
        return _webp_header(data)
    return _jpeg_header(data, max_jpeg_scans)


# A marker that ends entropy-coded data: 0xFF followed by anything but a stuffed zero or a restart marker.
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def _jpeg_header(data: bytes, max_scans: int) -> ImageHeader | None:
    """Walk the marker segments: the first frame header gives the size; every SOS is a scan. Stops one scan
    past `max_scans`, since the answer is then known."""
    size: tuple[int, int] | None = None
    scans = segments = 0
    at = 2
    while at + 4 <= len(data) and scans <= max_scans:
        if data[at] != 0xFF:  # stray bytes between segments: libjpeg skips to the next marker, so do we
            found = data.find(b"\xff", at)
            if found == -1:
                break
            at = found
            continue
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0xD9:  # end of image
            break
        if marker in _STANDALONE:
            at += 2
            continue
        segments += 1
        if segments > OTHER_JPEG_SEGMENTS + 2 * max_scans:  # a table (DHT) may precede each scan
            return ImageHeader("JPEG", *(size or (0, 0)), scans=max_scans + 1)
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        end = at + 2 + length
        if length < 2 or end > len(data):
            break
        if marker in _SOF and size is None and length >= 7:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            size = (width, height)
        if marker == 0xDA:
            scans += 1
            found = _SCAN_END.search(data, end)
            at = found.start() if found else len(data)
        else:
            at = end
    if size is None:
        return None
    return ImageHeader("JPEG", size[0], size[1], scans=scans)


def _webp_header(data: bytes) -> ImageHeader | None:
    if len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return ImageHeader("WEBP", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return ImageHeader("WEBP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return ImageHeader("WEBP", width, height)
    return None


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size` scaled down (never up) so that its long side is at most `max_side`."""
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _rgb(image):
    """Any decoded mode -> RGB, transparency flattened on white."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def _shrunk(image, max_side: int):
    """Area-averaged copy at most `max_side` long (Pillow's box filter: the same as OpenCV's INTER_AREA when
    shrinking). EXIF orientation survives: it is read from the info the copy keeps."""
    from PIL import Image

    size = _fit(image.size, max_side)
    if size == image.size:
        return image
    small = image.resize(size, Image.Resampling.BOX)
    small.info.update(image.info)
    return small


def _normalise(content_type: str) -> str:
    return {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}.get(content_type, content_type)
