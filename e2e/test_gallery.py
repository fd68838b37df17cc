"""The face gallery in a real Chromium: one person approved under one ID card, then checked under another
card, goes to review with `duplicate_face`; once the merchant erases the first session, the same person
is no longer a hit."""

from __future__ import annotations

import pytest

from e2e.conftest import BLINK_ID, phone_context
from e2e.support.flow import at, open_link, upload_id
from tests.support.api import auth
from tests.support.documents import card_with_face, jpeg
from tests.support.media import photo

pytestmark = [pytest.mark.e2e, pytest.mark.reads_documents]

RESULT_TIMEOUT_MS = 40_000


async def check(launch, camera, merchant, card, tmp_path, shot, reference: str) -> dict:
    """The customer ticks both boxes (the check and the gallery), uploads the card, blinks; the merchant's view."""
    created = await merchant.create_session(fixed_challenges=["blink"], reference_id=reference)
    path = tmp_path / f"{reference}.jpg"
    path.write_bytes(jpeg(card.image))
    browser = await launch(camera)
    context = await phone_context(browser)
    page = await context.new_page()
    page.set_default_timeout(RESULT_TIMEOUT_MS)  # reading the card (OCR) takes longer than 15 s on a busy machine
    await open_link(page, created["url"])
    await page.wait_for_url(at("/verify/consent"))
    await page.locator("input[name=agree]").check()
    await page.locator("input[name=gallery]").check()
    await shot(page, f"consent-{reference}")
    await page.locator("form.consent button[type=submit]").click()
    await upload_id(page, path)
    await page.locator("#start").click()
    await page.wait_for_url(at("/verify/result"), timeout=RESULT_TIMEOUT_MS)
    await shot(page, f"result-{reference}")
    await context.close()
    return await merchant.session(created["id"])


@pytest.mark.media
async def test_one_person_under_two_documents_goes_to_review_until_the_first_is_erased(launch, blink_camera, merchant, services, models, tmp_path, shot):
    merchant_id = services.store.api_keys()[0].merchant_id
    services.lifecycle.gallery.records.configure(merchant_id, True, "review", 5)
    cards = [card_with_face(models, photo(BLINK_ID), seed=seed) for seed in (21, 22, 23)]
    first = await check(launch, blink_camera, merchant, cards[0], tmp_path, shot, "customer-1")
    assert first["status"] == "approved", first
    second = await check(launch, blink_camera, merchant, cards[1], tmp_path, shot, "customer-2")
    assert second["status"] == "review" and "duplicate_face" in second["liveness"]["review_because"]
    (signal,) = [s for s in second["liveness"]["signals"] if s["code"] == "duplicate_face"]
    assert signal["detail"]["sessions"] == [first["id"]]
    async with merchant.http.delete(merchant.base + f"/api/v1/sessions/{first['id']}", headers=auth(merchant.key)) as response:
        assert response.status == 200
    third = await check(launch, blink_camera, merchant, cards[2], tmp_path, shot, "customer-3")
    assert third["status"] == "approved" and not [s for s in third["liveness"]["signals"] if s["code"] == "duplicate_face"]
