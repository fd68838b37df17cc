"""The operator console in a real Chromium: a real check (fake camera from a real clip, real WebRTC,
real models) ends in `review`, an operator signs in, sees the ID face and the live face side by side,
approves, and the merchant's receiver gets the signed webhook with the operator's decision. Another
merchant's operator gets a 404; the dashboard's funnel is checked against the database.

How the check lands in review: the service is given a calibration whose `match` point is stricter than
any genuine score (FAR 1e-9 at similarity 0.99, MATCH_FAR set to it), so the same person's genuine
score falls in the review band, exactly as a borderline match does in production.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from e2e.conftest import BLINK_ID, phone_context
from e2e.support.flow import at, walk_to_live
from server.app import create_app
from server.matching.calibration import DEFAULT_FILE, calibration_for
from server.matching.matcher import FaceMatcher
from server.sessions import Status
from server.webhooks import SIGNATURE_HEADER, verify_signature
from tests.support.console import PASSWORD, make_operator
from tests.support.media import photo

pytestmark = [pytest.mark.e2e, pytest.mark.media]

RESULT_TIMEOUT_MS = 60_000
LAPTOP = {"viewport": {"width": 1280, "height": 800}}
TABLET = {"width": 768, "height": 1024}


@pytest.fixture
def settings(settings, tmp_path):
    calibration = json.loads(DEFAULT_FILE.read_text())
    calibration["points"].append({"far": 1e-9, "threshold": 0.99, "tar": 0.0})
    path = tmp_path / "strict-calibration.json"
    path.write_text(json.dumps(calibration))
    return settings.replace(calibration_file=str(path), match_far=1e-9)


@pytest.fixture
def make_app(models):
    """The suite's loaded models, with the matcher built as the service builds it from these settings."""

    def make(settings):
        calibration = calibration_for(settings.face_model_dir, settings.calibration_file)
        matcher = FaceMatcher(models.matcher.models, calibration, settings.match_far, settings.review_far)
        return create_app(settings, models=replace(models, matcher=matcher))

    return make


async def sign_in(page, base: str, merchant: str, name: str) -> None:
    await page.goto(base + "/console/signin")
    await page.get_by_label("Merchant account").fill(merchant)
    await page.get_by_label("User name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.locator("form.signin button[type=submit]").click()
    await page.wait_for_url(at("/console/review"))


async def test_an_operator_approves_a_review_and_the_merchant_is_told(launch, blink_camera, merchant, receiver, services, server, shot):
    created = await merchant.create_session(fixed_challenges=["blink"], callback_url=receiver.base + "/hook")
    browser = await launch(blink_camera)
    customer = await (await phone_context(browser)).new_page()
    await walk_to_live(customer, created["url"], photo(BLINK_ID))
    await customer.locator("#start").click()
    await customer.wait_for_url(at("/verify/result"), timeout=RESULT_TIMEOUT_MS)
    assert await customer.locator("#result").get_attribute("data-status") == "review"
    await receiver.event("session.review")

    shop = services.store.merchant_by_name("Test Shop")
    make_operator(services, "Test Shop", "alice")
    make_operator(services, "Other Shop", "mallory", role="admin")
    base = str(server.make_url("")).rstrip("/")

    # Another merchant's operator: nothing to see, and the session itself is not found.
    other = await (await browser.new_context(**LAPTOP)).new_page()
    await sign_in(other, base, "Other Shop", "mallory")
    assert created["id"] not in await other.content()
    response = await other.goto(base + f"/console/sessions/{created['id']}")
    assert response.status == 404
    response = await other.goto(base + f"/console/sessions/{created['id']}/evidence/reference_face")
    assert response.status == 404

    context = await browser.new_context(**LAPTOP)
    page = await context.new_page()
    await sign_in(page, base, "Test Shop", "alice")
    await shot(page, "console-queue")
    await page.locator(f"a[href='/console/sessions/{created['id']}']").click()
    await page.wait_for_url(at(f"/console/sessions/{created['id']}"))
    faces = page.locator("img.face")
    kinds = [await faces.nth(i).get_attribute("data-kind") for i in range(await faces.count())]
    assert kinds[0] == "reference_face" and "live_face_0" in kinds
    for i in range(len(kinds)):
        assert await faces.nth(i).evaluate("img => img.complete && img.naturalWidth") == 112  # decoded, aligned crops
    score = float(await page.locator("#match-score").text_content())
    session = services.store.session(created["id"])
    assert session.status == Status.REVIEW and score == session.match["score"] and session.match["decision"] == "review"
    await shot(page, "console-session")
    evidence = await context.request.get(base + f"/console/sessions/{created['id']}/evidence/live_face_0")
    assert evidence.status == 200 and "no-store" in evidence.headers["cache-control"]

    await page.get_by_label("Approve").check()
    await page.get_by_label("Reason (sent to the merchant)").fill("Same person as on the ID; natural blinks")
    await page.locator("#decide").click()
    await page.locator("#notice").wait_for()
    assert await page.locator("#status").get_attribute("data-status") == "approved"

    delivery = await receiver.event("session.approved")
    assert verify_signature(merchant.secret.encode(), delivery.headers[SIGNATURE_HEADER], delivery.body)
    sent = delivery.event["data"]["session"]
    assert sent["id"] == created["id"] and sent["status"] == "approved" and sent["decision"] == "approved"
    assert sent["review"]["decided_by"] == ["alice"] and sent["review"]["reason"] == "Same person as on the ID; natural blinks"

    # The dashboard's funnel is what the database holds for this merchant.
    await page.goto(base + "/console/dashboard")
    await shot(page, "console-dashboard")
    # Usable on a tablet too: labelled controls, no sideways scrolling.
    await page.set_viewport_size(TABLET)
    await shot(page, "console-dashboard-tablet")
    await page.goto(base + f"/console/sessions/{created['id']}")
    await shot(page, "console-session-tablet")
    await page.goto(base + "/console/dashboard")
    shown = {step: int(await page.locator(f"td[data-total='{step}']").text_content()) for step in ("created", "link_opened", "consented", "id_uploaded", "live_started", "finished", "approved")}
    rows = services.store._all("SELECT id, status FROM sessions WHERE merchant_id = ?", (shop.id,))
    actions = {(r["session_id"], r["action"]) for r in services.store._all("SELECT session_id, action FROM audit_log")}
    ids = [r["id"] for r in rows]
    assert shown == {
        "created": len(ids),
        "link_opened": sum((i, "link.opened") in actions for i in ids),
        "consented": sum((i, "status.consented") in actions for i in ids),
        "id_uploaded": sum((i, "status.id_uploaded") in actions for i in ids),
        "live_started": sum((i, "status.live") in actions for i in ids),
        "finished": sum(r["status"] in ("approved", "rejected", "review") for r in rows),
        "approved": sum(r["status"] == "approved" for r in rows),
    }
    assert shown["approved"] == 1 and shown["created"] == 1


async def test_wrong_passwords_delay_the_guesser_and_a_reviewer_cannot_redact(launch, merchant, services, server, shot):
    created = await merchant.create_session()
    make_operator(services, "Test Shop", "alice")
    base = str(server.make_url("")).rstrip("/")
    browser = await launch()
    page = await (await browser.new_context(**LAPTOP)).new_page()
    await sign_in(page, base, "Test Shop", "alice")

    # A reviewer is offered no redaction, and a forged form is refused (with a valid CSRF token).
    await page.goto(base + f"/console/sessions/{created['id']}")
    await shot(page, "console-reviewer-session")
    assert await page.locator("form.redact").count() == 0
    token = await page.locator("input[name=csrf_token]").first.input_value()
    refused = await page.request.post(base + f"/console/sessions/{created['id']}/redact", form={"csrf_token": token, "confirm": "yes"})
    assert refused.status == 403
    assert services.store.session(created["id"]).redacted_at is None

    # Someone guessing alice's password from one address makes that address wait: there, even the right
    # password gets the same answer until the delay is over (alice elsewhere is not held up).
    guesser = await (await browser.new_context(**LAPTOP)).new_page()
    for attempt in range(services.settings.console_max_failures):
        await guesser.goto(base + "/console/signin")
        await guesser.get_by_label("Merchant account").fill("Test Shop")
        await guesser.get_by_label("User name").fill("alice")
        await guesser.get_by_label("Password").fill(f"guess number {attempt}")
        await guesser.locator("form.signin button[type=submit]").click()
        await guesser.locator("#signin-error").wait_for()
    assert "too many wrong tries" in await guesser.locator("#signin-error").text_content()
    await shot(guesser, "console-locked")
    await guesser.get_by_label("Password").fill(PASSWORD)
    await guesser.locator("form.signin button[type=submit]").click()
    await guesser.locator("#signin-error").wait_for()
    assert guesser.url.endswith("/console/signin")
    assert "too many wrong tries" in await guesser.locator("#signin-error").text_content()
