"""Desktop to phone in two real browsers: a desktop without a camera offers to continue on a phone,
shows a QR code and a short link; the phone (a fake camera playing a real clip) opens the link and does
the check; the desktop follows it and shows the result. A replay on the phone is still refused."""

from __future__ import annotations

import pytest

from e2e.conftest import BLINK_ID, HEADTURN_ID, phone_context
from e2e.support.browser import STEP_TIMEOUT_MS
from e2e.support.flow import at, walk_to_live
from tests.support.media import pad_model_dir, photo

pytestmark = [pytest.mark.e2e, pytest.mark.media]

RESULT_TIMEOUT_MS = 60_000
DESKTOP = {"viewport": {"width": 1280, "height": 800}, "locale": "en-US"}


async def desktop_hands_off(launch, merchant, challenges: list[str], id_photo: str, shot=None):
    """The desktop walks to the live step, finds no camera, asks for the phone link: (page, link, session id)."""
    created = await merchant.create_session(fixed_challenges=challenges)
    desktop = await (await launch(fake_camera=False)).new_context(**DESKTOP)
    desktop.set_default_timeout(STEP_TIMEOUT_MS)
    page = await desktop.new_page()
    await walk_to_live(page, created["url"], photo(id_photo))
    await page.locator("#start").click()
    await page.locator("body[data-live-error='no_camera']").wait_for(state="attached")
    # The link is bound to this browser now: the advice is the phone button, not "open this link elsewhere".
    problem = await page.locator("#problem-text").text_content()
    assert "Continue on my phone" in problem and "open this link" not in problem, problem
    assert await page.locator("#handoff").is_visible()
    if shot:
        await shot(page, "desktop-no-camera")
    await page.locator("#handoff").click()
    await page.locator("#short-link").wait_for()
    if shot:
        await shot(page, "desktop-qr")
    assert await page.locator(".qr svg").count() == 1
    return page, await page.locator("#short-link").get_attribute("href"), created["id"]


async def phone_checks(launch, camera, link: str) -> None:
    phone = await (await phone_context(await launch(camera))).new_page()
    await phone.goto(link)
    await phone.locator("form.start button[type=submit]").click()
    await phone.wait_for_url(at("/verify/live"))
    assert await phone.locator("#handoff-offer").is_hidden()  # a phone is not offered to go to a phone
    await phone.locator("#start").click()
    await phone.wait_for_url(at("/verify/result"), timeout=RESULT_TIMEOUT_MS)


async def test_a_desktop_hands_the_check_to_a_phone_and_shows_its_result(launch, blink_camera, merchant, shot):
    desktop, link, session_id = await desktop_hands_off(launch, merchant, ["blink"], BLINK_ID, shot)
    assert "/h/" in link
    await desktop.locator("body[data-handoff-state='waiting']").wait_for(state="attached")
    await phone_checks(launch, blink_camera, link)
    await desktop.locator("body[data-handoff-state='done']").wait_for(state="attached", timeout=RESULT_TIMEOUT_MS)
    assert await desktop.locator("body").get_attribute("data-handoff-status") == "approved"
    assert "confirmed" in await desktop.locator("#handoff-status").text_content()
    await shot(desktop, "desktop-result")
    data = await merchant.session(session_id)
    assert data["status"] == "approved" and data["liveness"]["path"] == "handoff"
    # The link again, on another phone: it says why it cannot be used.
    other = await (await phone_context(await launch(fake_camera=False))).new_page()
    await other.goto(link)
    assert await other.locator("h1").text_content() == "This phone link has already been used"
    assert "the first phone that opened it is doing the check" in await other.locator("main").text_content()
    await shot(other, "phone-link-used")


async def test_a_replay_on_the_phone_is_refused_and_the_desktop_says_so(launch, replay_camera, merchant):
    pad_model_dir()
    desktop, link, session_id = await desktop_hands_off(launch, merchant, ["turn_left"], HEADTURN_ID)
    await phone_checks(launch, replay_camera, link)
    data = await merchant.session(session_id)
    assert data["failure_reason"] == "presentation_attack", (data["status"], data["liveness"])
    assert data["liveness"]["path"] == "handoff"
    # The phone may try again (attempts are left): the desktop says the check goes on there.
    await desktop.locator("body[data-handoff-state='claimed']").wait_for(state="attached", timeout=RESULT_TIMEOUT_MS)
