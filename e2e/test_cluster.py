"""Two instances on one PostgreSQL database behind Debian's haproxy with the shipped deploy/haproxy.cfg:
a customer completes a check in Chromium through the proxy, the merchant reads the result from either."""

from __future__ import annotations

import asyncio

import pytest

from e2e.conftest import BLINK_ID, phone_context
from e2e.support.browser import chromium_args
from e2e.support.flow import at, walk_to_live
from server.api.auth import create_api_key
from tests.support.api import auth
from tests.support.instances import Cluster, Proxy, haproxy_binary
from tests.support.media import photo

pytestmark = [pytest.mark.e2e, pytest.mark.media]


@pytest.fixture
async def proxied(postgres, tmp_path):
    if haproxy_binary() is None:
        pytest.skip("haproxy is not installed (scripts/test installs Debian's haproxy)")
    cluster = Cluster(postgres.new_database(), tmp_path, trusted_proxies='["127.0.0.1/32"]')
    proxy = Proxy(cluster)
    for instance in (cluster.a, cluster.b):
        instance.env["REALNAME_PUBLIC_URL"] = proxy.url  # the links the merchant hands out
    await asyncio.to_thread(cluster.start)
    await asyncio.to_thread(proxy.start)
    yield cluster, proxy
    proxy.stop()
    cluster.stop()


async def test_a_check_through_the_proxy_and_the_result_from_either_instance(proxied, playwright_driver, chromium, blink_camera, http):
    cluster, proxy = proxied
    key, _secret = create_api_key(cluster.store, "Test Shop", sandbox=True)
    async with http.post(f"{proxy.url}/api/v1/sessions", json={"reference_id": "c-1", "fixed_challenges": ["blink"]}, headers=auth(key)) as response:
        assert response.status == 201, await response.text()
        created = await response.json()
    assert created["url"].startswith(proxy.url + "/v/")

    browser = await playwright_driver.chromium.launch(executable_path=str(chromium), headless=True, args=chromium_args(blink_camera.path))
    try:
        context = await phone_context(browser)
        page = await context.new_page()
        await walk_to_live(page, created["url"], photo(BLINK_ID))
        await page.wait_for_url(at("/verify/live"))
        await page.locator("#start").click()
        await page.wait_for_url(at("/verify/result"), timeout=40_000)
        assert await page.locator("#result").get_attribute("data-status") == "approved", context.console_log
        sticky = [c for c in await context.cookies() if c["name"] == "rn_instance"]
        assert [c["value"] for c in sticky] in (["a"], ["b"])  # every page, the offer and the bye: one instance
    finally:
        await browser.close()

    for instance in (cluster.a, cluster.b):
        async with http.get(f"{instance.url}/api/v1/sessions/{created['id']}", headers=auth(key)) as response:
            data = await response.json()
        assert data["status"] == "approved" and data["match"]["decision"] == "match"
