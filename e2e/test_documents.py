"""The ID document in a real Chromium: the customer uploads a generated card carrying a shared photo's face,
passes the live check, and the merchant's webhook carries what the card says."""

from __future__ import annotations

import pytest

from e2e.conftest import BLINK_ID, phone_context
from e2e.support.flow import at, walk_to_live
from tests.support.documents import card_with_face, jpeg
from tests.support.media import photo

pytestmark = [pytest.mark.e2e, pytest.mark.reads_documents]

RESULT_TIMEOUT_MS = 40_000


async def check_with_card(launch, camera, merchant, card, tmp_path, shot, **body) -> str:
    """The whole customer flow with the card as the ID photo; the result page's status."""
    created = await merchant.create_session(fixed_challenges=["blink", "blink"], **body)
    path = tmp_path / "card.jpg"
    path.write_bytes(jpeg(card.image))
    browser = await launch(camera)
    context = await phone_context(browser)
    page = await context.new_page()
    await walk_to_live(page, created["url"], path, shot)
    await page.locator("#start").click()
    await page.wait_for_url(at("/verify/result"), timeout=RESULT_TIMEOUT_MS)
    await shot(page, "result")
    return created["id"]


@pytest.mark.media
async def test_the_webhook_carries_the_cards_fields_and_the_expected_matches(launch, blink_camera, merchant, receiver, models, tmp_path, shot):
    card = card_with_face(models, photo(BLINK_ID), seed=11)
    truth = card.truth
    expected = {"name": truth["name"], "id_number": truth["id_number"], "date_of_birth": truth["date_of_birth"]}
    await check_with_card(launch, blink_camera, merchant, card, tmp_path, shot, expected=expected, callback_url=receiver.base + "/hook")
    delivery = await receiver.event("session.approved", timeout=30)
    document = delivery.event["data"]["session"]["document"]
    assert document["type"] == "cn_resident_card_front" and document["checks_passed"] is True
    assert {name: field["value"] for name, field in document["fields"].items()} == {k: truth[k] for k in ("name", "sex", "date_of_birth", "id_number")}
    assert document["expected_matches"] == {"name": True, "id_number": True, "date_of_birth": True}


@pytest.mark.media
async def test_a_card_whose_number_fails_its_checksum_gets_the_configured_outcome(launch, blink_camera, merchant, receiver, services, models, tmp_path, shot):
    services.lifecycle.settings = services.lifecycle.settings.replace(document_outcome="rejected")
    card = card_with_face(models, photo(BLINK_ID), seed=12, bad_checksum=True)
    session_id = await check_with_card(launch, blink_camera, merchant, card, tmp_path, shot, callback_url=receiver.base + "/hook")
    delivery = await receiver.event("session.rejected", timeout=30)
    session = delivery.event["data"]["session"]
    assert session["id"] == session_id and session["failure_reason"] == "document_checksum_failed"
    assert "id_number_check_character" in [c["code"] for c in session["document"]["checks"] if c["passed"] is False]
    data = await merchant.session(session_id)
    assert data["match"]["decision"] == "match"  # the face was right: the document decided
