"""TURN REST API credentials, checked against a real coturn started by the test: what the service
hands out is accepted, and a wrong secret or an expired credential is refused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time

import pytest
from aioice.stun import TransactionFailed
from aioice.turn import create_turn_endpoint

from server.config import ConfigError, load_settings
from server.rtc.ice import page_ice_servers, server_rtc_configuration
from server.rtc.turn import SERVER_SUBJECT, turn_credential, turn_ice_servers


def test_the_credential_follows_the_turn_rest_api_scheme():
    credential = turn_credential("s3cret", "ses_1", now=1_000.4, ttl_s=600)
    assert credential.username == "1600:ses_1" and credential.expires_at == 1600
    expected = base64.b64encode(hmac.new(b"s3cret", b"1600:ses_1", hashlib.sha1).digest()).decode()
    assert credential.credential == expected


def test_no_turn_without_urls_or_secret():
    assert turn_ice_servers([], "s", "x", 0, 60) == []
    assert turn_ice_servers(["turn:h:3478"], "", "x", 0, 60) == []


def test_the_page_gets_credentials_for_its_session_and_every_configured_url():
    urls = ["turn:t.example:3478?transport=udp", "turn:t.example:3478?transport=tcp", "turns:t.example:443?transport=tcp"]
    settings = load_settings(environ={}, turn_urls=urls, turn_secret="k", ice_servers=[{"urls": "stun:s.example:3478"}])
    servers = page_ice_servers(settings, "ses_abc", now=100.0)
    assert servers[0] == {"urls": "stun:s.example:3478"}
    assert servers[1]["urls"] == urls and servers[1]["username"] == f"{100 + settings.turn_credential_ttl_s}:ses_abc"
    # The service itself relays only when told to.
    assert [s.urls for s in server_rtc_configuration(settings, 100.0).iceServers] == ["stun:s.example:3478"]
    relaying = server_rtc_configuration(settings.replace(turn_server_url=urls[1]), 100.0).iceServers
    assert relaying[-1].urls == [urls[1]] and relaying[-1].username.endswith(":" + SERVER_SUBJECT)


@pytest.mark.parametrize(
    "changes",
    [
        {"turn_urls": ["turn:t.example:3478"]},  # no secret
        {"turn_server_url": "turn:t.example:3478"},  # no secret
        {"turn_urls": ["stun:t.example:3478"], "turn_secret": "k"},
        {"turn_urls": ["turn:t.example:3478"], "turn_secret": "k", "turn_credential_ttl_s": 5},
    ],
)
def test_unusable_turn_settings_are_refused(changes):
    with pytest.raises(ConfigError):
        load_settings(environ={}, **changes)


async def allocate(coturn, username: str, password: str, transport: str = "udp") -> tuple[str, int]:
    endpoint, _ = await asyncio.wait_for(
        create_turn_endpoint(asyncio.DatagramProtocol, ("127.0.0.1", coturn.port), username, password, transport=transport), 10
    )
    try:
        return endpoint.get_extra_info("sockname")
    finally:
        endpoint.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_coturn_accepts_the_credentials_the_service_hands_out(coturn, transport):
    credential = turn_credential(coturn.secret, "ses_1", time.time(), 600)
    relayed = await allocate(coturn, credential.username, credential.credential, transport)
    assert relayed[0] == "127.0.0.1" and relayed[1] > 0


async def test_coturn_refuses_a_wrong_secret_and_an_expired_credential(coturn):
    wrong = turn_credential("not-the-secret", "ses_1", time.time(), 600)
    with pytest.raises(TransactionFailed):
        await allocate(coturn, wrong.username, wrong.credential)
    expired = turn_credential(coturn.secret, "ses_1", time.time() - 700, 600)
    with pytest.raises(TransactionFailed):
        await allocate(coturn, expired.username, expired.credential)


@pytest.fixture
def settings(settings, coturn):
    """The service relays its own side through coturn too (TURN_SERVER_URL)."""
    return settings.replace(turn_urls=[coturn.udp_url], turn_secret=coturn.secret, turn_server_url=coturn.udp_url)


async def test_the_service_relays_its_own_side_through_coturn(http, server, sandbox_key, coturn):
    from realname_tools.client import ClipTrack, load_clip
    from tests.support.media import video
    from tests.test_live_flow import BLINK_CLIP, BLINK_ID, ready_for_live, session_json

    created, customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["blink"])
    run = await customer.start_live(ClipTrack(*load_clip(video(BLINK_CLIP), max_seconds=8)))
    assert run.offer_error is None
    result = await customer.wait_result(run, timeout=30)
    await customer.close()
    assert result is not None and result["status"] == "approved"
    # The service's own allocation, with its own short-lived credential (which pair won is ICE's choice).
    assert f":{SERVER_SUBJECT}>" in coturn.log.read_text(errors="replace")
    data = await session_json(http, server, sandbox_key, created["id"])
    assert data["liveness"]["path"] in ("webrtc", "webrtc_relay")
