"""Generated ID documents and the OCR reader, shared by the document tests (OCR costs about a second an image)."""

from __future__ import annotations

import datetime as dt
from functools import cache

import pytest

from realname_tools.id_documents import FONT, GeneratedDocument, make_document
from server.documents.reader import DocumentReader
from server.models.files import INSTALL_COMMAND, ModelFileError

TODAY = dt.date(2026, 11, 30)


@cache
def reader() -> DocumentReader:
    document_reader = DocumentReader()
    try:
        document_reader.engine()
    except ModelFileError:
        pytest.skip(f"the OCR models are not installed ({INSTALL_COMMAND})")
    return document_reader


@cache
def document(kind: str, seed: int = 1, bad_checksum: bool = False) -> GeneratedDocument:
    if not FONT.is_file():
        pytest.skip(f"{FONT} is missing (apt-get install fonts-wqy-microhei; scripts/test does)")
    return make_document(kind, seed, today=TODAY, bad_checksum=bad_checksum)


def jpeg(image) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return encoded.tobytes()


def card_with_face(models, photo_path, kind: str = "cn_resident_card_front", seed: int = 1, bad_checksum: bool = False) -> GeneratedDocument:
    """A generated document carrying the face of a shared photo (an ID-style crop of it)."""
    if not FONT.is_file():
        pytest.skip(f"{FONT} is missing (apt-get install fonts-wqy-microhei; scripts/test does)")
    return make_document(kind, seed, portrait_of(models, photo_path), today=dt.datetime.now(dt.UTC).date(), bad_checksum=bad_checksum)


def portrait_of(models, photo_path):
    """An ID-style crop of the face in a shared photo."""
    from realname_tools.cards import portrait_crop
    from server.matching.images import decode_image

    return portrait_crop(decode_image(photo_path.read_bytes()), models.matcher.models.detector)
