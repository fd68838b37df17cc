"""Reading an uploaded document for the service: decoded under the image limits in a child process, OCR off the loop."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from server.matching.decoding import ImageDecoder
from server.matching.images import ImageError, ImageLimits
from tests.support.documents import TODAY, document, jpeg, reader


@pytest.fixture
async def decoder():
    decoding = ImageDecoder(ImageLimits(max_bytes=2 * 1024 * 1024))
    await decoding.start()
    yield decoding
    await decoding.close()


async def test_an_uploaded_passport_is_read_and_checked(decoder):
    generated = document("td3_mrz")
    beats = 0

    async def heartbeat():
        nonlocal beats
        while True:
            await asyncio.sleep(0.01)
            beats += 1

    ticking = asyncio.create_task(heartbeat())
    reading = await reader().read_upload(decoder, jpeg(generated.image), "image/jpeg", TODAY)
    ticking.cancel()
    assert beats > 5  # the loop kept running while the document was read
    assert reading.type == "td3_mrz" and reading.checks_passed
    assert reading.value("document_number") == generated.truth["document_number"]
    assert reading.value("date_of_birth") == generated.truth["date_of_birth"]


async def test_the_engine_loads_once():
    assert reader().engine() is reader().engine()


async def test_uploads_outside_the_limits_are_refused_before_any_ocr(decoder):
    with pytest.raises(ImageError) as caught:
        await reader().read_upload(decoder, b"%PDF-1.7 not a photo", "application/pdf", TODAY)
    assert caught.value.code == "unsupported_type"
    with pytest.raises(ImageError) as caught:
        await reader().read_upload(decoder, b"\xff\xd8\xff" + b"\0" * (3 * 1024 * 1024), "image/jpeg", TODAY)
    assert caught.value.code == "too_large"


async def test_a_photo_without_text_is_an_unrecognised_document(decoder):
    reading = await reader().read_upload(decoder, jpeg(np.full((480, 640, 3), 180, np.uint8)), "image/jpeg", TODAY)
    assert reading.type == "unrecognised" and reading.lines_read == 0 and reading.fields == {} and not reading.checks_passed


async def test_a_card_whose_number_fails_its_check_is_caught():
    generated = document("cn_resident_card_front", seed=3, bad_checksum=True)
    reading = await reader().read_decoded(generated.image, TODAY)
    assert reading.type == "cn_resident_card_front"
    assert "id_number_check_character" in reading.checks_failed


async def test_readings_take_turns_per_session_and_a_newer_photo_replaces_a_queued_one():
    from server.documents.reader import ReadingReplaced

    blank = np.full((480, 640, 3), 200, np.uint8)
    documents = reader()
    first = asyncio.create_task(documents.read_decoded(blank, TODAY, "ses_a"))
    await asyncio.sleep(0)
    older = asyncio.create_task(documents.read_decoded(blank, TODAY, "ses_a"))
    other = asyncio.create_task(documents.read_decoded(blank, TODAY, "ses_b"))
    await asyncio.sleep(0)
    newer = asyncio.create_task(documents.read_decoded(document("td3_mrz").image, TODAY, "ses_a"))
    await asyncio.sleep(0)
    assert documents.busy and documents.waiting == 2  # ses_a's place (now its newer photo), then ses_b
    with pytest.raises(ReadingReplaced) as caught:
        await older
    assert (caught.value.code, caught.value.status) == ("upload_replaced", 409)
    finished: list[str] = []
    for name, task in (("first", first), ("other", other), ("newer", newer)):
        task.add_done_callback(lambda _, name=name: finished.append(name))
    await asyncio.gather(first, other, newer)
    assert finished == ["first", "newer", "other"]  # ses_a kept the place it took before ses_b
    assert newer.result().type == "td3_mrz" and not documents.busy and documents.waiting == 0
