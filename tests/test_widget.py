"""The widget's server side (issue 29): realname.js at its versioned path, the merchant's frame origins, and
the hosted pages' headers: CSP frame-ancestors names exactly the session's merchant's origins, and every
other page keeps `frame-ancestors 'none'` with `X-Frame-Options: DENY`. The browser side is e2e/test_widget.py."""

from __future__ import annotations

import json
import re

import aiohttp
import pytest

from realname_tools.client import HostedFlowClient
from server.api.auth import create_api_key
from server.web.framing import OriginError, parse_origin
from tests.support.api import auth

SHOP = ["https://shop.example", "http://127.0.0.1:8123"]


async def create(http, server, key, **body):
    body.setdefault("reference_id", "order-5")
    async with http.post(server.make_url("/api/v1/sessions"), json=body, headers=auth(key)) as response:
        assert response.status == 201
        return await response.json()


def framing_merchant(services, name="Framing Shop", origins=SHOP) -> str:
    key, _ = create_api_key(services.store, name, sandbox=True)
    merchant = services.store.merchant_by_name(name)
    services.store.set_frame_origins(merchant.id, origins)
    return key


def frame_ancestors(headers) -> str:
    return re.search(r"frame-ancestors ([^;]*)", headers["Content-Security-Policy"]).group(1).strip()


async def test_the_sdk_is_served_at_its_versioned_path_for_other_origins(http, server):
    async with http.get(server.make_url("/sdk/v1/realname.js")) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/javascript")
        assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"  # a merchant's page loads it
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "no-store" not in response.headers["Cache-Control"]
        text = await response.text()
    assert 'version: "1"' in text and "verify" in text
    assert not re.search(r"\b(import|require)\s*\(|https?://[a-z]", text.split("*/", 1)[1])  # no dependency, no CDN
    async with http.get(server.make_url("/sdk/v2/realname.js")) as response:
        assert response.status == 404


async def test_only_the_sessions_merchants_origins_may_frame_its_pages(http, server, services, sandbox_key):
    key = framing_merchant(services)
    framed = await create(http, server, key)
    async with http.get(framed["url"]) as response:
        assert response.status == 200
        assert frame_ancestors(response.headers) == " ".join(SHOP)
        assert "X-Frame-Options" not in response.headers
        page = await response.text()
    assert f'data-embed-origins="{" ".join(SHOP)}"' in page and '<script src="/static/embed.js"></script>' in page
    # Every step of that session's flow, once the customer started.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        flow = HostedFlowClient(browser, str(server.make_url("/")))
        await flow.open(framed["url"])
        async with browser.get(server.make_url("/verify/consent")) as response:
            assert response.status == 200 and frame_ancestors(response.headers) == " ".join(SHOP)
            assert "X-Frame-Options" not in response.headers

    # Another merchant's session, and the pages of no session, keep the default.
    other = await create(http, server, sandbox_key)
    for url in (other["url"], str(server.make_url("/")), str(server.make_url("/privacy")), str(server.make_url("/v/nope")), str(server.make_url("/docs/api"))):
        async with http.get(url) as response:
            assert frame_ancestors(response.headers) == "'none'", url
            assert response.headers["X-Frame-Options"] == "DENY"
            assert "embed.js" not in await response.text()


async def test_framed_sessions_bind_the_browser_with_a_partitioned_cookie_over_https(aiohttp_server, make_app, settings, http):
    server = await aiohttp_server(make_app(settings.replace(public_url="https://verify.example")))
    from server.http.services import SERVICES

    services = server.app[SERVICES]
    key = framing_merchant(services)
    created = await create(http, server, key)
    token_path = "/v/" + created["url"].rsplit("/v/", 1)[1]
    async with aiohttp.ClientSession() as browser:
        async with browser.post(server.make_url(token_path), allow_redirects=False) as response:
            assert response.status == 303
            cookies = response.headers.getall("Set-Cookie")
    bound = next(c for c in cookies if c.startswith("rn_browser="))
    assert "SameSite=None" in bound and "Partitioned" in bound and "Secure" in bound and "HttpOnly" in bound
    # An unframed merchant's customers keep Lax cookies.
    plain, _ = create_api_key(services.store, "Plain Shop", sandbox=True)
    created = await create(http, server, plain)
    async with aiohttp.ClientSession() as browser:
        async with browser.post(server.make_url("/v/" + created["url"].rsplit("/v/", 1)[1]), allow_redirects=False) as response:
            bound = next(c for c in response.headers.getall("Set-Cookie") if c.startswith("rn_browser="))
    assert "SameSite=Lax" in bound and "Partitioned" not in bound


@pytest.mark.parametrize(
    ("text", "origin"),
    [("https://shop.example", "https://shop.example"), ("https://Shop.Example:443/", "https://shop.example"), ("http://127.0.0.1:8123", "http://127.0.0.1:8123"), ("https://[::1]:8443", "https://[::1]:8443")],
)
def test_origins_are_canonical(text, origin):
    assert parse_origin(text) == origin


@pytest.mark.parametrize(
    "text",
    ["shop.example", "https://*.shop.example", "https://shop.example/path", "https://shop.example?x", "https://u:p@shop.example", "javascript:alert(1)", "https://shop.example:99999", "'self'", "https://"],
)
def test_what_is_not_an_origin_is_refused(text):
    with pytest.raises(OriginError):
        parse_origin(text)


def test_the_cli_sets_and_clears_the_frame_origins(tmp_path, monkeypatch, capsys):
    from server.cli import main as cli

    monkeypatch.setenv("REALNAME_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REALNAME_EVIDENCE_KEY_FILE", str(tmp_path / "keys" / "evidence.key"))
    assert cli(["merchants", "create", "acme"]) == 0
    capsys.readouterr()
    assert cli(["merchants", "set-frame-origins", "acme", "https://Shop.example/", "https://shop.example", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"name": "acme", "frame_origins": ["https://shop.example"]}
    assert cli(["merchants", "set-frame-origins", "acme", "https://shop.example/checkout"]) != 0
    assert "origin only" in capsys.readouterr().err
    assert cli(["merchants", "set-frame-origins", "acme"]) == 0
    assert "No page may frame" in capsys.readouterr().out
    assert cli(["merchants", "set-frame-origins", "nobody", "https://shop.example"]) != 0


def test_the_operators_setting_is_kept_beside_the_merchants_origins():
    from server.web.security import frame_ancestors

    assert frame_ancestors("'none'", ()) == "'none'"
    assert frame_ancestors("'none'", ("https://shop.example",)) == "https://shop.example"
    assert frame_ancestors("https://portal.example", ("https://shop.example",)) == "https://shop.example https://portal.example"
    assert frame_ancestors("https://shop.example", ("https://shop.example",)) == "https://shop.example"
