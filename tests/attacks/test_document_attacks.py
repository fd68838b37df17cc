"""Attacks on document reading (issue 25, item 2), against the real server with the real OCR models.

A crafted ID photo (4000 x 4000, a real face in one corner, 98 long lines of text) cost 39.4 s of OCR,
and every upload waited in one queue behind it. Now a reading is bounded (the photo scaled down, the
lines and their widths capped, a CPU budget) and marked incomplete when a bound cut it short, and readings
are queued per session: a session's later photo replaces its queued one, so a customer waits for at most
the reading in flight and one per session ahead of them. Durations are printed, never asserted.

The crafted photo is generated in the test's temp folder from a shared face photo; nothing is committed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from pathlib import Path

import numpy as np
import pytest

from server.documents.ocr import OcrSettings
from tests.support.api import auth
from tests.support.documents import FONT, card_with_face, jpeg
from tests.support.media import photo

ID_PHOTO = "vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg"
pytestmark = pytest.mark.reads_documents


def crafted_photo(folder: Path, side: int = 4000, lines: int = 98) -> bytes:
    """The issue's photo: a face in the top left corner, then lines of text as wide as the photo."""
    from PIL import Image, ImageDraw, ImageFont

    if not FONT.is_file():
        pytest.skip(f"{FONT} is missing (apt-get install fonts-wqy-microhei)")
    canvas = Image.new("RGB", (side, side), (250, 250, 245))
    canvas.paste(Image.open(photo(ID_PHOTO)).convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.truetype(str(FONT), 28)
    rng = random.Random(7)
    pitch = (side - 900) // lines
    for i in range(lines):
        words = ("".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(rng.randint(3, 9))) for _ in range(60))
        draw.text((20, 900 + i * pitch), " ".join(words), fill=(20, 20, 20), font=font)
    path = folder / "crafted.jpg"
    canvas.save(path, quality=90)
    return path.read_bytes()


async def new_session(http, server, key) -> str:
    async with http.post(server.make_url("/api/v1/sessions"), json={"reference_id": "attack"}, headers=auth(key)) as response:
        assert response.status == 201, await response.text()
        return (await response.json())["id"]


async def upload(http, server, key, session_id: str, data: bytes) -> tuple[int, dict]:
    url = server.make_url(f"/api/v1/sessions/{session_id}/reference-photo")
    async with http.post(url, data=data, headers={**auth(key), "Content-Type": "image/jpeg"}, timeout=None) as response:
        return response.status, await response.json()


async def document_of(http, server, key, session_id: str) -> dict:
    async with http.get(server.make_url(f"/api/v1/sessions/{session_id}"), headers=auth(key)) as response:
        return (await response.json())["document"]


async def test_a_crafted_photo_is_read_within_its_bounds_and_marked_incomplete(http, server, services, sandbox_key, tmp_path):
    crafted = crafted_photo(tmp_path)
    reader = services.lifecycle.documents
    image = await services.lifecycle.decoder.decode_upload(crafted, "image/jpeg")
    started = time.thread_time()
    reading = reader.read_image(image, dt.date.today())  # the OCR alone, on this thread: its CPU seconds
    print(f"\ncrafted photo: {time.thread_time() - started:.1f} s of OCR CPU, {reading.lines_read} lines, complete={reading.complete}")
    assert reading.complete is False and reading.lines_read <= OcrSettings().max_boxes

    session_id = await new_session(http, server, sandbox_key)
    began = time.monotonic()
    status, body = await upload(http, server, sandbox_key, session_id, crafted)
    print(f"crafted upload through the server: {time.monotonic() - began:.1f} s")
    assert status == 200, body  # never refused for being cut short: the face is kept, the reading marked
    document = await document_of(http, server, sandbox_key, session_id)
    assert document["complete"] is False and document["type"] == "unrecognised"


async def test_a_customer_behind_crafted_photos_waits_for_one_reading_per_session_ahead(http, server, services, models, sandbox_key, tmp_path):
    crafted = crafted_photo(tmp_path)
    card = jpeg(card_with_face(models, photo(ID_PHOTO)).image)
    reader = services.lifecycle.documents
    attacker, victim = await new_session(http, server, sandbox_key), await new_session(http, server, sandbox_key)
    answered: list[tuple[str, int, str | None]] = []

    async def send(who: str, session_id: str, data: bytes) -> float:
        began = time.monotonic()
        status, body = await upload(http, server, sandbox_key, session_id, data)
        answered.append((who, status, body.get("code")))
        return time.monotonic() - began

    first = [asyncio.create_task(send("attacker", attacker, crafted)) for _ in range(3)]
    while not reader.busy:  # the first crafted photo is being read
        await asyncio.sleep(0.05)
    victim_upload = asyncio.create_task(send("victim", victim, card))
    later = [asyncio.create_task(send("attacker", attacker, crafted)) for _ in range(4)]
    waited = await asyncio.wait_for(victim_upload, 600)
    await asyncio.wait_for(asyncio.gather(*first, *later), 600)
    print(f"\nvictim's upload behind 7 crafted photos of one session: {waited:.1f} s; answers {answered}")

    before_victim = answered[: answered.index(("victim", 200, None))]
    read_before = [entry for entry in before_victim if entry[1] == 200]
    assert len(read_before) <= 2  # the one in flight, and the attacker's one queued place ahead
    attacker_answers = [entry for entry in answered if entry[0] == "attacker"]
    assert {entry[1:] for entry in attacker_answers} <= {(200, None), (409, "upload_replaced")}
    assert (409, "upload_replaced") in {entry[1:] for entry in attacker_answers}  # replaced, not piled up
    document = await document_of(http, server, sandbox_key, victim)
    assert document["complete"] is True and document["type"] == "cn_resident_card_front" and document["checks_passed"] is True
    assert (await document_of(http, server, sandbox_key, attacker))["complete"] is False


async def test_a_customer_who_leaves_gives_up_their_place(services):
    """An upload cancelled while queued (the customer closed the page) is never read."""
    reader = services.lifecycle.documents
    blank = np.full((480, 640, 3), 200, np.uint8)
    running = asyncio.create_task(reader.read_decoded(blank, dt.date.today(), "ses_a"))
    await asyncio.sleep(0)
    queued = asyncio.create_task(reader.read_decoded(blank, dt.date.today(), "ses_b"))
    await asyncio.sleep(0)
    assert reader.waiting == 1
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert reader.waiting == 0
    assert (await running).lines_read == 0
