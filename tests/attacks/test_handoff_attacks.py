"""Issue 25, item 4, played against the real server: a session's handoff links taken one after the other.

The desktop asks for several links before any is claimed. Once phone A claims one, the others are dead:
phone B gets "used", so does the desktop taking its session back, and nobody can ask for a new link
(phone A neither). A preview robot's GET still uses nothing, and no handoff code reaches a log."""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp
import pytest

from server.api.auth import create_api_key
from server.http.services import SERVICES
from server.web.security import RedactingAccessLogger, redact_path
from tests.support.postgres import BACKENDS, database_for
from tests.test_handoff import hand_off, status
from tests.test_live_flow import BLINK_ID, ready_for_live

ROBOT = {"User-Agent": "WhatsApp/2.23.20.0"}


@pytest.fixture(params=BACKENDS)
def database_url(request) -> str:
    """Both engines: on PostgreSQL two claims run in two transactions at once."""
    return database_for(request)


def new_browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def post(browser: aiohttp.ClientSession, url: str) -> int:
    async with browser.post(url, allow_redirects=False) as response:
        return response.status


async def get(browser: aiohttp.ClientSession, url: str, **kwargs) -> int:
    async with browser.get(url, allow_redirects=False, **kwargs) as response:
        return response.status


async def offer_links(http, server, count: int) -> list[str]:
    links = []
    for _ in range(count):
        code, page, link = await hand_off(http, server)
        assert code == 200 and link, page
        links.append(link)
    return links


async def live_page_is_bound(browser: aiohttp.ClientSession, server) -> bool:
    async with browser.get(server.make_url("/verify/live"), allow_redirects=False) as response:
        return response.status == 200 and 'id="live-config"' in await response.text()


async def test_the_first_claim_kills_every_other_link_of_the_session(http, server, services, sandbox_key, caplog):
    caplog.set_level(logging.DEBUG)
    created, _desktop = await ready_for_live(http, server, sandbox_key, BLINK_ID)
    links = await offer_links(http, server, 3)
    async with new_browser() as robot, new_browser() as phone_a, new_browser() as phone_b:
        for link in links:  # a chat app's preview of each: nothing used
            assert await get(robot, link, headers=ROBOT) == 200
        assert await post(phone_a, links[0]) == 303
        assert await live_page_is_bound(phone_a, server)
        # Phone B with a second link, the desktop with a third: both used up by the first claim.
        assert await get(phone_b, links[1]) == 410
        assert await post(phone_b, links[1]) == 410
        assert await post(http, links[2]) == 410
        assert not await live_page_is_bound(phone_b, server)
        assert await live_page_is_bound(phone_a, server)  # the session is still phone A's
        # No new link either: not for the desktop (it only follows), not for phone A.
        code, _page, link = await hand_off(phone_a, server)
        assert code == 303 and link is None
        async with http.post(server.make_url("/verify/handoff"), data={"csrf_token": "x"}, allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/verify/handoff"
        assert await live_page_is_bound(phone_a, server)
    assert (await status(http, server))[1]["state"] == "claimed"
    offered = [row for row in services.store.audit_for(created["id"]) if row["action"] == "handoff.offered"]
    claimed = [row for row in services.store.audit_for(created["id"]) if row["action"] == "handoff.claimed"]
    assert len(offered) == 3 and len(claimed) == 1
    for link in links:
        assert link.rsplit("/", 1)[1] not in caplog.text


async def test_two_phones_claiming_two_links_at_once_get_one_session(http, server, sandbox_key):
    await ready_for_live(http, server, sandbox_key, BLINK_ID)
    links = await offer_links(http, server, 4)
    browsers = [new_browser() for _ in links]
    try:
        statuses = await asyncio.gather(*(post(b, link) for b, link in zip(browsers, links, strict=True)))
        assert sorted(statuses) == [303, 410, 410, 410], statuses
        bound = [await live_page_is_bound(b, server) for b in browsers]
        assert bound.count(True) == 1 and bound[statuses.index(303)]
    finally:
        await asyncio.gather(*(b.close() for b in browsers))


async def test_handoff_codes_never_reach_the_access_log(aiohttp_server, make_app, settings, http, sandbox_key, caplog):
    """Both access logs: the service's own (as `python -m server` runs it) and aiohttp's default one."""
    caplog.set_level(logging.DEBUG)
    assert redact_path("/h/abcdefghjkmn") == "/h/<token>" and redact_path("/v/secret/x") == "/v/<token>/x"
    server = await aiohttp_server(make_app(settings), access_log_class=RedactingAccessLogger)
    key, _secret = create_api_key(server.app[SERVICES].store, "Log Shop", sandbox=True)
    await ready_for_live(http, server, key, BLINK_ID)
    [link] = await offer_links(http, server, 1)
    code = link.rsplit("/", 1)[1]
    async with new_browser() as phone:
        assert await get(phone, link) == 200
        assert await post(phone, link) == 303
    assert "/h/<token>" in caplog.text
    assert code not in caplog.text


@pytest.mark.parametrize("path", ["/h/abcdefghjkmn", "/v/Lk3x9fT0kenSecret"])
def test_redacting_the_path_keeps_what_it_was(path):
    assert re.fullmatch(r"/[vh]/<token>", redact_path(path))
