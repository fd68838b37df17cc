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
