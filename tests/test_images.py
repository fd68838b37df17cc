"""Decoding uploads: only real JPEG/PNG/WebP within limits, upright, and a specific error otherwise."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from server.matching.images import ImageError, decode_image, sniff_format


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gradient(width=200, height=120) -> Image.Image:
    array = np.zeros((height, width, 3), dtype=np.uint8)
    array[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)
    array[..., 2] = 200
    return Image.fromarray(array)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepted_formats_decode_to_bgr(fmt):
    bgr = decode_image(encoded(gradient(), fmt))
    assert bgr.shape == (120, 200, 3) and bgr.dtype == np.uint8
    assert bgr[60, 100, 0] > 150  # blue channel first: BGR


def test_exif_orientation_is_applied():
    data = encoded(gradient(200, 120), "JPEG", exif=_exif_rotated())
    assert decode_image(data).shape == (200, 120, 3)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    return exif.tobytes()


def test_transparency_is_flattened_on_white():
    rgba = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    assert decode_image(encoded(rgba, "PNG"))[50, 50].tolist() == [255, 255, 255]


@pytest.mark.parametrize(
    "data, code, status",
    [
        (b"", "empty_file", 400),
        (b"%PDF-1.4 not an image", "unsupported_type", 415),
        (b"GIF89a....", "unsupported_type", 415),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 100, "unreadable_image", 422),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "unreadable_image", 422),
    ],
)
def test_bad_files_get_specific_errors(data, code, status):
    with pytest.raises(ImageError) as caught:
        decode_image(data)
    assert (caught.value.code, caught.value.status) == (code, status)


def test_truncated_jpeg_is_unreadable():
    data = encoded(gradient(400, 300), "JPEG")
    with pytest.raises(ImageError) as caught:
        decode_image(data[: len(data) // 3])
    assert caught.value.code == "unreadable_image"


def test_too_large_file():
    with pytest.raises(ImageError) as caught:
        decode_image(encoded(gradient(), "PNG"), max_bytes=100)
    assert (caught.value.code, caught.value.status) == ("too_large", 413)


def test_decompression_bomb_is_refused_before_decoding():
    bomb = encoded(Image.new("1", (20000, 20000)), "PNG", optimize=True)
    assert len(bomb) < 200_000
    with pytest.raises(ImageError) as caught:
        decode_image(bomb, max_pixels=40_000_000)
    assert caught.value.code == "too_many_pixels"


def test_a_file_that_lies_about_its_type():
    with pytest.raises(ImageError) as caught:
        decode_image(encoded(gradient(), "PNG"), declared_type="image/jpeg")
    assert caught.value.code == "type_mismatch"
    assert decode_image(encoded(gradient(), "JPEG"), declared_type="image/jpg").shape[2] == 3


def test_tiny_images_are_refused():
    with pytest.raises(ImageError) as caught:
        decode_image(encoded(gradient(20, 20), "PNG"))
    assert caught.value.code == "image_too_small"


def test_sniffing():
    assert sniff_format(encoded(gradient(), "WEBP")) == "WEBP"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WAVE") is None
