"""The hosted pages in a real Chromium: a fake camera made from a real clip, real WebRTC to the real app.

Every page a test visits is screenshotted at phone size into e2e/screenshots/ (git-ignored) after an
accessibility smoke check (see the `shot` fixture).
"""

from __future__ import annotations

import json
import time

import jwt
import pytest

from e2e.conftest import BLINK_ID, HEADTURN_ID, OTHER_ID, phone_context
from e2e.support.a11y import assert_accessible, assert_in_view
from e2e.support.flow import (
    KEEP_PEERS,
    at,
    consent,
    open_link,
    upload_id,
    walk_to_live,
    watch_live_text,
)
from server.rtc.bandwidth import RECEIVE_KBPS
from server.sessions import Status
from server.web.pages import CAPTURE_FPS
from server.webhooks import SIGNATURE_HEADER, verify_signature
from tests.support.media import photo
from tests.support.waiting import eventually
from tests.test_receipts import cli, tampered, with_pyjwt

pytestmark = pytest.mark.e2e  # and `media` on the tests that need ../shared/media

RESULT_TIMEOUT_MS = 40_000
CONNECTING = "Connecting…"


async def start_live(page, shot=None) -> None:
    await page.wait_for_url(at("/verify/live"))
    if shot:
        await shot(page, "live-start")
    await page.locator("#start").click()


async def live_page(launch, camera, url: str, id_photo, readable_peers: bool = False):
    """A phone page started on the live step, and what it says; its peer connections readable (SENT_VIDEO) if asked."""
    browser = await launch(camera)
    context = await phone_context(browser)
    if readable_peers:
        await context.add_init_script(KEEP_PEERS)
    said = await watch_live_text(context)
    page = await context.new_page()
    await walk_to_live(page, url, id_photo)
    await start_live(page)
    return page, said


async def prompted(said, timeout: float = 20.0) -> bool:
    """The server's first instruction (not our own "Connecting…") reached the page."""
    return await eventually(lambda: any(t != CONNECTING for t in said.texts()), timeout=timeout)


@pytest.mark.media
async def test_same_person_is_approved_and_the_merchant_is_told(launch, blink_camera, merchant, receiver, shot, tmp_path):
    created = await merchant.create_session(
        fixed_challenges=["blink", "blink"],
        callback_url=receiver.base + "/hook",
        redirect_url=receiver.base + "/done?order=42",
    )
    browser = await launch(blink_camera)
    context = await phone_context(browser)
    said = await watch_live_text(context)
    page = await context.new_page()

    await open_link(page, created["url"])
    await page.wait_for_url(at("/verify/consent"))
    await shot(page, "consent")
    # The browser refuses to submit without the box ticked...
    await page.locator("form.consent button[type=submit]").click()
    assert await page.get_by_role("checkbox").evaluate("box => box.validity.valueMissing")
    assert page.url.endswith("/verify/consent")
    # ...and so does the server, with a message tied to the checkbox, when the form skips validation.
    await page.locator("form.consent").evaluate("form => form.submit()")
    error = page.locator("#consent-error")
    await error.wait_for()
    assert await error.get_attribute("role") == "alert"
    assert "tick" in (await error.text_content()).lower()
    assert await page.get_by_role("checkbox").get_attribute("aria-describedby") == "consent-error"
    await shot(page, "consent-error")
    await consent(page)
    await upload_id(page, photo(BLINK_ID), shot)

    await start_live(page, shot)
    assert await prompted(said), said.seen
    await shot(page, "live-running", check=False)  # may be leaving for the result any moment
    await page.wait_for_url(at("/verify/result"), timeout=RESULT_TIMEOUT_MS)
    assert await page.locator("#result").get_attribute("data-status") == "approved", said.seen
    await shot(page, "result")
    instructions = said.texts()
    assert "Blink your eyes" in instructions and instructions[-1] == "Done. Checking…", instructions

    # The merchant is told, signed with its webhook secret.
    delivery = await receiver.event("session.approved")
    assert verify_signature(merchant.secret.encode(), delivery.headers[SIGNATURE_HEADER], delivery.body)
    assert not verify_signature(b"another secret", delivery.headers[SIGNATURE_HEADER], delivery.body)
    assert delivery.event["data"]["session"]["id"] == created["id"]
    assert delivery.event["data"]["session"]["status"] == "approved"

    data = await merchant.session(created["id"])
    assert data["status"] == "approved" and data["match"]["decision"] == "match"
    assert [c["passed"] for c in data["liveness"]["challenges"]] == [True, True]

    # The signed receipt of this browser check verifies offline, with `verify-receipt` and with a standard
    # JOSE library, against the service's published keys; an altered one fails both.
    assert delivery.event["data"]["session"]["receipt"] == data["receipt"]
    async with merchant.http.get(merchant.base + "/.well-known/jwks.json") as response:
        jwks = await response.json()
    claims = with_pyjwt(data["receipt"], jwks)
    assert claims["decision"] == "approved" and claims["sub"] == created["id"]
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    (tmp_path / "receipt.jws").write_text(data["receipt"])
    (tmp_path / "altered.jws").write_text(tampered(data["receipt"]))
    assert cli("verify-receipt", str(tmp_path / "receipt.jws"), "--jwks", str(tmp_path / "jwks.json")).returncode == 0
    assert cli("verify-receipt", str(tmp_path / "altered.jws"), "--jwks", str(tmp_path / "jwks.json")).returncode == 1
    with pytest.raises(jwt.InvalidSignatureError):
        with_pyjwt(tampered(data["receipt"]), jwks)
    stats = data["live_stats"]
    print(
        f"\n[e2e] live_stats, Chromium fake camera {blink_camera.width}x{blink_camera.height} "
        f"at {float(blink_camera.fps):.2f} fps: received_fps={stats['received_fps']} "
        f"analysed_fps={stats['analysed_fps']} frames analysed/received={stats['frames_analysed']}/"
        f"{stats['frames_received']} dropped={stats['frames_dropped']} resolution={stats['resolution']} "
        f"received_kbps={stats.get('received_kbps')} "
        f"latency_ms={stats['latency_ms']} decision_ms={stats.get('decision_ms')}"
    )
    assert stats["frames_received"] > 0 and stats["frames_analysed"] > 0  # outcomes only: rates are the benchmark's

    # Back to the shop, with the outcome in the return link.
    link = page.locator("#continue")
    assert (await link.get_attribute("href")).startswith(receiver.base + "/done?order=42&")
    await link.click()
    await page.wait_for_url(receiver.base + "/done**")
    assert receiver.returns == [{"order": "42", "realname_session": created["id"], "realname_status": "approved"}]
    # No script errors, CSP refusals or failed requests on the way (but the refused consent, 422).
    unexpected = [line for line in context.console_log if "422" not in line]
    assert not unexpected, unexpected


# The page's video sender: its bitrate cap, the answer it was given, and the bitrate it sent over `seconds`.
SENT_VIDEO = """async (seconds) => {
  const pc = window.__realnamePeers[0];
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === "video");
  const outbound = async () => {
    let out = {};
    (await pc.getStats()).forEach((r) => { if (r.type === "outbound-rtp" && r.kind === "video") out = r; });
    return out;
  };
  const first = await outbound();
  const started = performance.now();
  await new Promise((done) => setTimeout(done, seconds * 1000));
  const last = await outbound();
  const elapsed = performance.now() - started;
  const kbps = (last.bytesSent - first.bytesSent) * 8 / elapsed;
  const encoding = sender.getParameters().encodings[0];
  return {
    maxBitrate: encoding.maxBitrate, maxFramerate: encoding.maxFramerate, answer: pc.remoteDescription.sdp, kbps,
    encodedFps: (last.framesEncoded - first.framesEncoded) * 1000 / elapsed, width: last.frameWidth, height: last.frameHeight,
    cameraFps: sender.track.getSettings().frameRate,
  };
}"""


@pytest.mark.media
async def test_the_camera_is_sent_at_no_more_than_the_bitrate_the_analysis_needs(launch, blink_camera, merchant):
    created = await merchant.create_session(fixed_challenges=["smile"])  # never performed: the check stays live
    page, said = await live_page(launch, blink_camera, created["url"], photo(BLINK_ID), readable_peers=True)
    assert await prompted(said), said.seen
    sent = await page.evaluate(SENT_VIDEO, 5)
    print(
        f"\n[e2e] video sent over 5 s: {sent['kbps']:.0f} kbps (cap {RECEIVE_KBPS}), {sent['encodedFps']:.1f} frames encoded a second "
        f"(maxFramerate {sent['maxFramerate']}, camera {sent['cameraFps']}), {sent['width']}x{sent['height']}"
    )
    assert sent["maxBitrate"] == RECEIVE_KBPS * 1000
    assert sent["maxFramerate"] == CAPTURE_FPS  # what the steps that need every frame are analysed at
    assert f"b=AS:{RECEIVE_KBPS}" in sent["answer"]
    assert 0 < sent["kbps"] <= RECEIVE_KBPS * 1.2  # rate control may overshoot a little, briefly


@pytest.mark.media
async def test_another_persons_id_is_rejected(launch, blink_camera, merchant, shot):
    created = await merchant.create_session(fixed_challenges=["blink"])
    browser = await launch(blink_camera)
    context = await phone_context(browser)
    page = await context.new_page()
    await walk_to_live(page, created["url"], photo(OTHER_ID), shot)
    await start_live(page, shot)
    await page.wait_for_url(at("/verify/result"), timeout=RESULT_TIMEOUT_MS)
    assert await page.locator("#result").get_attribute("data-status") == "rejected"
    await shot(page, "result")
    assert await page.locator("#continue").count() == 0  # no redirect_url was set
    data = await merchant.session(created["id"])
    assert data["failure_reason"] == "face_mismatch" and data["match"]["decision"] == "no_match"


@pytest.mark.media
async def test_turning_left_then_right_is_approved(launch, headturn_camera, merchant, services, shot):
    created = await merchant.create_session(fixed_challenges=["turn_left", "turn_right"])
    browser = await launch(headturn_camera)
    context = await phone_context(browser)
    said = await watch_live_text(context)
    page = await context.new_page()
    await walk_to_live(page, created["url"], photo(HEADTURN_ID), shot)
    await start_live(page, shot)
    await page.wait_for_url(at("/verify/result"), timeout=RESULT_TIMEOUT_MS)
    status = await page.locator("#result").get_attribute("data-status")
    data = await merchant.session(created["id"])
    assert status == "approved", (data["failure_reason"], data["liveness"], said.seen)
    timings = ", ".join(f"{c['type']} asked {c['asked_at_s']} s done {c['completed_at_s']} s" for c in data["liveness"]["challenges"])
    print(f"\n[e2e] head turns (challenge timeout {services.settings.challenge_timeout_s} s): {timings}")
    await shot(page, "result")
    instructions = said.texts()
    assert instructions.index("Turn your head to your left") < instructions.index("Turn your head to your right")
    # The face is in the picture the whole time: during the turns the hints follow the movement, never
    # "We can't see your face" (a face turned beyond the landmarker's reach is "Not so far").
    assert "We can't see your face" not in said.texts("hint"), said.seen


@pytest.mark.media
async def test_a_turn_beyond_the_landmarkers_reach_is_told_not_so_far_not_no_face(launch, over_rotation_camera, merchant, shot):
    created = await merchant.create_session(fixed_challenges=["turn_left"])
    page, said = await live_page(launch, over_rotation_camera, created["url"], photo(HEADTURN_ID))
    await page.wait_for_url(at("/verify/result"), timeout=RESULT_TIMEOUT_MS)
    data = await merchant.session(created["id"])
    asked = next(i for i, (kind, text, _) in enumerate(said.seen) if kind == "instruction" and text == "Turn your head to your left")
    hints = [text for kind, text, _ in said.seen[asked:] if kind == "hint"]  # from the first turn on
    seen = [(round(t - said.seen[0][2], 2), kind, text) for kind, text, t in said.seen]
    assert "Not so far, come back a little" in hints, (data["failure_reason"], seen, data["liveness"]["challenges"])
    assert "We can't see your face" not in hints, said.seen  # the customer sees their turned face in the preview
    # The same face came back: a real turn, passed. PAD's grey band may still hold it for review: in 2 of
    # 5 full-suite runs on 7 December (busy machine) it did (`pad_uncertain`, which acts on sandbox keys
    # too); alone it was approved 9 of 9 times. That is PAD's business, not this test's (issue 24 note).
    codes = {s["code"] for s in data["liveness"].get("signals") or []}
    why = (data["failure_reason"], codes, data["liveness"].get("pad"), data.get("match"), said.seen)
    assert data["liveness"]["passed"] and data["failure_reason"] is None, why
    assert data["status"] == "approved" or (data["status"] == "review" and "pad_uncertain" in codes), why


@pytest.mark.media
async def test_a_blocked_camera_says_so(launch, blink_camera, merchant, services, shot):
    created = await merchant.create_session(fixed_challenges=["blink"])
    browser = await launch(blink_camera, allow_camera=False)
    context = await phone_context(browser)
    await context.grant_permissions([])  # nothing granted; the prompt is denied by the launch flags
    page = await context.new_page()
    await walk_to_live(page, created["url"], photo(BLINK_ID), shot)
    await start_live(page, shot)
    await page.locator("body[data-live-error='camera_denied']").wait_for(state="attached")
    problem = page.locator("#problem")
    assert await problem.is_visible() and await problem.get_attribute("role") == "alert"
    assert "Camera access was blocked" in await page.locator("#problem-text").text_content()
    assert await page.locator("#start").is_enabled()
    await assert_in_view(page, "#problem")
    await shot(page, "camera-denied")
    session = services.store.session(created["id"])  # nothing was streamed, no attempt was used
    assert session.status == Status.ID_UPLOADED and session.attempts == 0


@pytest.mark.media
async def test_a_file_that_is_not_a_photo_is_refused_on_the_page(launch, merchant, services, shot):
    created = await merchant.create_session()
    browser = await launch(fake_camera=False)
    context = await phone_context(browser)
    page = await context.new_page()
    await open_link(page, created["url"])
    await consent(page, shot)
    cases = [
        ({"name": "id.jpg", "mimeType": "image/jpeg", "buffer": b"this is a text file, not a photo\n"}, "not a photo we can use"),
        ({"name": "id.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"}, "not a photo we can use"),
    ]
    await shot(page, "document")
    for index, (upload, message) in enumerate(cases):
        await page.locator("#photo").set_input_files(upload)
        async with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/verify/document")) as answer:
            await page.locator("#document-submit").click()
        assert (await answer.value).status == 415
        await page.wait_for_load_state()
        error = page.locator("#document-error")
        assert message in await error.text_content()
        assert await error.get_attribute("role") == "alert"
        assert await page.locator("#photo").get_attribute("aria-describedby") == "document-error"
        assert page.url.endswith("/verify/document")
        assert await page.locator("h1").text_content() == "Photo of your ID"
        await shot(page, f"error-{index}")
    assert services.store.session(created["id"]).status == Status.CONSENTED
    # A real photo still goes through from the error page.
    await upload_id(page, photo(BLINK_ID))
    await shot(page, "live")
    assert services.store.session(created["id"]).status == Status.ID_UPLOADED


async def test_expired_unknown_and_used_links_get_clear_pages(launch, merchant, services, server, shot):
    browser = await launch(fake_camera=False)
    context = await phone_context(browser)
    page = await context.new_page()

    expired = await merchant.create_session(ttl_s=60)
    services.store.update_session(expired["id"], expires_at=time.time() - 1)
    response = await page.goto(expired["url"])
    assert response.status == 410
    assert await page.locator("h1").text_content() == "This link has expired"
    await shot(page, "expired")

    response = await page.goto(str(server.make_url("/v/this-is-not-a-link-token")))
    assert response.status == 404
    assert await page.locator("h1").text_content() == "This link is not valid"
    await shot(page, "unknown")

    used = await merchant.create_session()
    await open_link(page, used["url"])
    await page.wait_for_url(at("/verify/consent"))
    other = await phone_context(browser)  # another browser, e.g. the link forwarded to someone
    intruder = await other.new_page()
    response = await intruder.goto(used["url"])
    assert response.status == 410
    assert await intruder.locator("h1").text_content() == "This link has already been used"
    await shot(intruder, "used")
    # The browser that opened it first carries on.
    await page.reload()
    assert page.url.endswith("/verify/consent")


@pytest.mark.media
async def test_closing_the_tab_frees_the_peer_connection_within_seconds(launch, blink_camera, merchant, services, shot):
    created = await merchant.create_session(fixed_challenges=["turn_left"])  # not in this clip: never ends
    browser = await launch(blink_camera)
    context = await phone_context(browser)
    said = await watch_live_text(context)
    page = await context.new_page()
    await walk_to_live(page, created["url"], photo(BLINK_ID), shot)
    await start_live(page, shot)
    assert await prompted(said), said.seen
    assert created["id"] in services.attempts.live
    await shot(page, "live-running")
    started = time.monotonic()
    await page.close()  # pagehide: "bye" on the data channel and a sendBeacon to /verify/live/bye
    assert await eventually(lambda: not services.attempts.live, timeout=30)  # `abandoned` below: the bye, not the watchdog
    freed_after = time.monotonic() - started
    print(f"\n[e2e] peer connection freed {freed_after:.2f} s after the tab was closed")
    session = services.store.session(created["id"])
    assert session.status == Status.ID_UPLOADED and session.failure_reason == "abandoned"
    assert session.attempts_left == session.max_attempts - 1


async def test_chinese_session_shows_chinese_pages(launch, merchant, shot):
    created = await merchant.create_session(locale="zh-CN")
    browser = await launch(fake_camera=False)
    context = await phone_context(browser)
    page = await context.new_page()
    await open_link(page, created["url"])
    await page.wait_for_url(at("/verify/consent"))
    assert await page.locator("html").get_attribute("lang") == "zh-Hans"
    assert await page.locator("h1").text_content() == "确认是您本人"
    assert await page.get_by_role("checkbox", name="我同意按上述方式处理我的人脸信息以完成本次核验（此同意独立于其他任何条款，单独作出）。").count() == 1
    assert "测试模式" in await page.locator(".sandbox").text_content()
    await shot(page, "consent")
    # The customer can switch to English; the choice sticks on the next page.
    await page.get_by_role("link", name="English").click()
    await page.wait_for_url("**/verify/consent?lang=en")
    assert await page.locator("html").get_attribute("lang") == "en"
    await shot(page, "consent-en")
    await consent(page)
    assert await page.locator("h1").text_content() == "Photo of your ID"
    await shot(page, "document")


@pytest.mark.media
async def test_pages_are_accessible_on_a_small_phone(launch, blink_camera, merchant, server, shot):
    browser = await launch(blink_camera)
    context = await phone_context(browser)
    said = await watch_live_text(context)
    page = await context.new_page()
    for path in ("/", "/privacy", "/verify"):  # /verify without a link: the invalid-link page
        await page.goto(str(server.make_url(path)))
        await shot(page, path.strip("/") or "index")
    context.console_log.clear()  # the invalid-link page is a 403 on purpose

    created = await merchant.create_session(fixed_challenges=["turn_left"])
    await walk_to_live(page, created["url"], photo(BLINK_ID), shot)
    await shot(page, "live")
    regions = dict((await assert_accessible(page))["liveRegions"])
    assert regions.get("instruction") == "assertive" and regions.get("hint") == "polite", regions
    assert await page.locator("#instruction").get_attribute("aria-atomic") == "true"
    assert await page.locator("#problem").get_attribute("role") == "alert"
    await start_live(page)
    assert await prompted(said), said.seen
    assert await page.locator("#stage").is_visible() and await page.locator("#intro").is_hidden()
    # While the customer holds the phone up, the picture and what to do are all on screen.
    for region in ("h1", "#stage", "#instruction", "#hint"):  # the title whole, not cut by the page's own scroll
        await assert_in_view(page, region)
    await shot(page, "live-streaming")
    assert not context.console_log, context.console_log


@pytest.mark.media
@pytest.mark.parametrize("locale, submit_text", [("en", "Use this photo"), ("zh-CN", "使用这张照片")])
async def test_use_this_photo_appears_once_a_photo_is_chosen_and_stays_on_a_phones_screen(launch, merchant, locale, submit_text, shot):
    created = await merchant.create_session(locale=locale)
    browser = await launch(fake_camera=False)
    context = await phone_context(browser)
    page = await context.new_page()
    await open_link(page, created["url"])
    await consent(page)
    submit = page.locator("#document-submit")
    assert await submit.is_hidden()  # nothing chosen yet: only "Take or choose a photo"
    await shot(page, "document")
    await page.locator("#photo").set_input_files(str(photo(BLINK_ID)))
    await page.locator("#preview").wait_for(state="visible")
    await submit.wait_for(state="visible")
    assert await submit.text_content() == submit_text
    await page.wait_for_function("() => document.getElementById('preview-image').complete")
    await assert_in_view(page, "#document-submit")  # the preview leaves the button on a 360x640 screen
    await assert_in_view(page, "#preview")
    await shot(page, "document-chosen")
    await submit.click()
    await page.wait_for_url(at("/verify/live"))
