"""Reaching customers whose network lets no direct peer connection through: the page is forced to use
TURN relay candidates only (`iceTransportPolicy: "relay"`), with credentials the service derives for the
session from the secret it shares with a real coturn started by the test. The genuine face is approved
and the result says the check went `webrtc_relay`; a replay on a monitor is still refused."""

from __future__ import annotations

import pytest

from e2e.conftest import BLINK_ID, HEADTURN_ID, phone_context
from e2e.support.flow import FORCE_RELAY, at, walk_to_live
from tests.support.media import pad_model_dir, photo

pytestmark = [pytest.mark.e2e, pytest.mark.media]

RESULT_TIMEOUT_MS = 60_000


@pytest.fixture
def settings(settings, coturn):
    return settings.replace(turn_urls=[coturn.udp_url, coturn.tcp_url], turn_secret=coturn.secret)


async def relayed_check(launch, camera, merchant, challenges: list[str], id_photo: str, **session) -> dict:
    created = await merchant.create_session(fixed_challenges=challenges, **session)
    browser = await launch(camera)
    context = await phone_context(browser)
    await context.add_init_script(FORCE_RELAY)
    page = await context.new_page()
    await walk_to_live(page, created["url"], photo(id_photo))
    await page.locator("#start").click()
    await page.wait_for_url(at("/verify/result"), timeout=RESULT_TIMEOUT_MS)
    return await merchant.session(created["id"])


async def test_a_check_through_the_turn_relay_is_approved_and_says_so(launch, blink_camera, merchant, receiver, services, coturn):
    data = await relayed_check(launch, blink_camera, merchant, ["blink"], BLINK_ID, callback_url=receiver.base + "/hook")
    assert data["status"] == "approved", (data["failure_reason"], data["liveness"])
    assert data["liveness"]["path"] == "webrtc_relay"
    ended = [row["detail"] for row in services.store.audit_for(data["id"]) if row["action"] == "live.ended"]
    assert ended == [{"reason": "completed", "path": "webrtc_relay", "connection": "webrtc_relay"}]
    delivery = await receiver.event("session.approved")
    assert delivery.event["data"]["session"]["path"] == "webrtc_relay"
    # The TURN server saw this session's own credential, never the shared secret.
    log = coturn.log.read_text(errors="replace")
    assert f":{data['id']}" in log and coturn.secret not in log


async def test_a_replay_through_the_turn_relay_is_refused(launch, replay_camera, merchant):
    pad_model_dir()
    data = await relayed_check(launch, replay_camera, merchant, ["turn_left"], HEADTURN_ID)
    assert data["failure_reason"] == "presentation_attack", (data["status"], data["liveness"])
    assert data["liveness"]["path"] == "webrtc_relay"
