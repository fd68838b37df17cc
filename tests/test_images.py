"""Decoding uploads: only real JPEG/PNG/WebP within limits, upright, and a specific error otherwise."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from PIL import Image

from server.matching.images import MAX_JPEG_SCANS, MAX_SIDE, ImageError, ImageLimits, check_header, decode_image, read_header, sniff_format
from tests.support.media import MEDIA, require_media


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


# -- what a file declares, read before decoding -------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, mode, options",
    [
        ("JPEG", "RGB", {}),
        ("JPEG", "RGB", {"progressive": True}),
        ("PNG", "RGB", {}),
        ("WEBP", "RGB", {}),  # VP8
        ("WEBP", "RGB", {"lossless": True}),  # VP8L
        ("WEBP", "RGBA", {}),  # VP8X (alpha)
    ],
)
def test_declared_size_is_read_from_the_header(fmt, mode, options):
    data = encoded(gradient(333, 121).convert(mode), fmt, **options)
    header = read_header(data, sniff_format(data))
    assert (header.kind, header.width, header.height) == (fmt, 333, 121)


def test_jpeg_scans_are_counted():
    assert read_header(encoded(gradient(), "JPEG"), "JPEG").scans == 1
    assert 6 <= read_header(encoded(gradient(), "JPEG", progressive=True), "JPEG").scans <= 20


def test_every_real_photo_is_within_the_scan_limit():
    """Calibration: the shared photos (phones, cameras, press agencies, several encoders) have at most 14."""
    require_media()
    most = 0
    for path in MEDIA.rglob("*.jp*g"):
        data = path.read_bytes()
        if sniff_format(data) == "JPEG":  # a few are PNG or WebP under a .jpg name
            most = max(most, read_header(data, "JPEG").scans)
    assert 0 < most <= MAX_JPEG_SCANS // 5


@pytest.mark.parametrize(
    "size, allowed",
    [((1600, 1000), True), ((2000, 900), True), ((900, 2000), True), ((400, 100), True), ((401, 100), False), ((100, 4000), False)],
)
def test_aspect_ratio(size, allowed):
    """Up to 4:1 (a 20:9 phone photo is 2.2:1); beyond, refused before decoding."""
    data = encoded(Image.new("L", size, 90), "PNG")
    if allowed:
        assert check_header(data, "image/png", ImageLimits()).width == size[0]
        return
    with pytest.raises(ImageError) as caught:
        decode_image(data)
    assert (caught.value.code, caught.value.status) == ("bad_aspect_ratio", 422)


def test_too_many_scans_is_refused_before_decoding():
    data = encoded(gradient(), "JPEG", progressive=True)
    scans = read_header(data, "JPEG").scans
    with pytest.raises(ImageError) as caught:
        check_header(data, None, ImageLimits(max_jpeg_scans=scans - 1))
    assert (caught.value.code, caught.value.status) == ("image_too_complex", 422)
    check_header(data, None, ImageLimits(max_jpeg_scans=scans))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_large_photos_come_out_as_a_bounded_copy(fmt):
    bgr = decode_image(encoded(gradient(4000, 3000), fmt))
    assert bgr.shape == (1200, MAX_SIDE, 3)
    assert bgr[600, 1500, 2] > 200 and bgr[600, 100, 2] < 50 and 180 < bgr[600, 800, 0] < 220  # the same picture, BGR


def test_exif_orientation_is_applied_to_the_bounded_copy():
    data = encoded(gradient(3200, 1000), "JPEG", exif=_exif_rotated())
    assert decode_image(data).shape == (MAX_SIDE, 500, 3)


def test_a_header_that_disagrees_with_the_decoder_is_unreadable():
    data = bytearray(encoded(gradient(), "PNG"))
    data[16:24] = (300).to_bytes(4, "big") + (200).to_bytes(4, "big")  # IHDR now lies (and its CRC is wrong)
    with pytest.raises(ImageError) as caught:
        decode_image(bytes(data))
    assert caught.value.code == "unreadable_image"


def test_image_errors_cross_process_boundaries_intact():
    error = pickle.loads(pickle.dumps(ImageError("bad_aspect_ratio", "too long", 422)))
    assert (error.code, error.message, error.status) == ("bad_aspect_ratio", "too long", 422)
