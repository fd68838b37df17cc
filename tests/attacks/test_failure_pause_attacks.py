"""Issue 25, item 5, played against the real server: the pause after failed checks, lifted by dropping
the `rn_device` cookie.

The pause now keys on the session (its link) and on the address (IPv6 by /64) as well as on the browser:
a client that drops its cookie is still paused on its session, on the recorded path (plan and upload)
and on the live offer; a client that also takes new links is paused by its address once the address
has failed several customers' worth. A neighbour at another address is never paused. The proxy's
X-Forwarded-For gives each browser its address (the service trusts its proxy here)."""

from __future__ import annotations

import aiohttp
import pytest

from realname_tools.client import ClipTrack, HostedFlowClient, load_clip
from server.api.auth import create_api_key
from server.http.services import SERVICES
from server.ratelimit import FailureLimiter, address_group
from server.web.cookies import DEVICE_COOKIE
from tests.attacks.test_live_attacks import blank_frames
from tests.support.media import video
from tests.support.recording import webm
from tests.test_live_flow import BLINK_CLIP, BLINK_ID, ready_for_live, session_json
from tests.test_recorded import live_config, plan, upload

UNREADABLE = b"\x1a\x45\xdf\xa3" + b"\x00" * 5000  # a WebM header and nothing: fails as recording_unreadable
FAILURES = 2  # per session and per browser
ADDRESS_FAILURES = 4  # per address


@pytest.fixture
async def proxied(aiohttp_server, make_app, settings):
    """The real app behind a trusted proxy, with small limits and room for many attempts per session."""
    server = await aiohttp_server(make_app(settings.replace(trust_forwarded=True, start_timeout_s=1.0)))
    services = server.app[SERVICES]
    services.attempts.failures = FailureLimiter(FAILURES, 600.0, 120.0)
    services.attempts.address_failures = FailureLimiter(ADDRESS_FAILURES, 600.0, 120.0)
    services.lifecycle.settings = services.lifecycle.settings.replace(max_attempts=20)
    return server


@pytest.fixture
def sandbox_key_of():
    def make(server) -> str:
        key, _secret = create_api_key(server.app[SERVICES].store, "Pause Shop", sandbox=True)
        return key

    return make


@pytest.fixture(scope="module")
def blink_clip_webm():
    frames, fps = load_clip(video(BLINK_CLIP), max_seconds=12)
    return lambda seconds: webm(frames, fps, seconds)


def browser_at(address: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"X-Forwarded-For": address})


def drop_device_cookie(browser: aiohttp.ClientSession) -> None:
    browser.cookie_jar.clear(lambda morsel: morsel.key == DEVICE_COOKIE)
    assert all(morsel.key != DEVICE_COOKIE for morsel in browser.cookie_jar)


async def fail_recorded(browser, server) -> None:
    config = await live_config(browser, server)
    status, issued = await plan(browser, server, config)
    assert status == 200, issued
    status, answer = await upload(browser, server, config, issued["nonce"], UNREADABLE)
    assert (status, answer["status"]) == (200, "id_uploaded"), answer


async def fail_live(customer: HostedFlowClient) -> None:
    run = await customer.start_live(ClipTrack(*blank_frames()))
    assert run.offer_error is None, run.offer_error
    result = await customer.wait_result(run, timeout=60)
    await customer.close()
    assert result is not None and result["status"] == "id_uploaded"


async def offer_error(customer: HostedFlowClient) -> dict | None:
    run = await customer.start_live(ClipTrack(*blank_frames()))
    await customer.close()
    return run.offer_error


def paused(status: int, answer: dict) -> bool:
    return status == 429 and answer["error"]["code"] == "too_many_failures"


async def test_dropping_the_cookie_after_recorded_failures_lifts_no_pause(proxied, sandbox_key_of):
    key = sandbox_key_of(proxied)
    async with browser_at("203.0.113.7") as attacker:
        created, customer = await ready_for_live(attacker, proxied, key, BLINK_ID)
        for _ in range(FAILURES):
            await fail_recorded(attacker, proxied)
        config = await live_config(attacker, proxied)
        assert paused(*await plan(attacker, proxied, config))
        drop_device_cookie(attacker)  # the attack: a browser the limiter has not seen
        assert paused(*await plan(attacker, proxied, config))
        error = await offer_error(customer)
        assert error is not None and error["status"] == 429 and error["code"] == "too_many_failures"
        data = await session_json(attacker, proxied, key, created["id"])
        assert data["attempts"]["used"] == FAILURES and data["status"] == "id_uploaded"


async def test_dropping_the_cookie_after_live_failures_lifts_no_pause_on_an_upload(proxied, sandbox_key_of, blink_clip_webm):
    """A plan taken before the live failures: its upload, without the cookie, is refused unanalysed."""
    key = sandbox_key_of(proxied)
    async with browser_at("203.0.113.8") as attacker:
        created, customer = await ready_for_live(attacker, proxied, key, BLINK_ID, fixed_challenges=["blink"])
        config = await live_config(attacker, proxied)
        status, issued = await plan(attacker, proxied, config)
        assert status == 200
        for _ in range(FAILURES):
            await fail_live(customer)
        assert (await offer_error(customer))["code"] == "too_many_failures"
        drop_device_cookie(attacker)
        assert (await offer_error(customer))["code"] == "too_many_failures"
        assert paused(*await upload(attacker, proxied, config, issued["nonce"], blink_clip_webm(issued["duration_s"])))
        data = await session_json(attacker, proxied, key, created["id"])
        # The plan used an attempt of its own (recorded plans count as attempts); the upload used none.
        assert data["attempts"]["used"] == FAILURES + 1 and data["status"] == "id_uploaded"


async def test_new_links_and_new_cookies_from_one_address_are_paused_by_the_address(proxied, sandbox_key_of):
    """Each browser fails its own session's share; the address (an IPv6 /64, whichever of its addresses
    is used) is paused after ADDRESS_FAILURES; a customer at another address is not."""
    key = sandbox_key_of(proxied)
    addresses = ["2001:db8:7:7::1", "2001:db8:7:7::2", "2001:db8:7:7:abcd::3"]
    assert len({address_group(a) for a in addresses}) == 1
    for index in range(ADDRESS_FAILURES // FAILURES):
        async with browser_at(addresses[index]) as attacker:
            await ready_for_live(attacker, proxied, key, BLINK_ID)
            for _ in range(FAILURES):
                await fail_recorded(attacker, proxied)
    async with browser_at(addresses[-1]) as attacker:
        await ready_for_live(attacker, proxied, key, BLINK_ID)  # a new link, a new cookie
        assert paused(*await plan(attacker, proxied, await live_config(attacker, proxied)))
    async with browser_at("2001:db8:7:8::1") as neighbour:
        await ready_for_live(neighbour, proxied, key, BLINK_ID)
        status, issued = await plan(neighbour, proxied, await live_config(neighbour, proxied))
        assert status == 200 and issued["nonce"]


def test_an_address_is_grouped_as_a_client_holds_it():
    assert address_group("203.0.113.7") == "203.0.113.7"
    assert address_group("2001:db8:1:2:3:4:5:6") == address_group("2001:db8:1:2::9") == "2001:db8:1:2::/64"
    assert address_group("::ffff:203.0.113.7") == "203.0.113.7"
    assert address_group("unknown") == "unknown"
