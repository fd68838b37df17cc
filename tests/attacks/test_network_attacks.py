"""Attacks through the network edge, each played against the real server (issue 10, items 6-9, 15, 16):
DNS rebinding and transition addresses on webhooks, a merchant answering with an endless body, a
merchant whose endpoint hangs, X-Forwarded-For spoofing, secrets in malformed requests, and the Server
header. Each shows the attack now fails safely: a clear answer, no 5xx, nothing lost for others."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import time
from collections import Counter

import pytest
from aiohttp import web

from server.api.auth import create_api_key
from server.http.client import forwarded_client, trusted_networks
from server.http.services import SERVICES
from server.webhooks import DestinationError, check_destination, is_public, pick_fairly
from tests import test_webhooks
from tests.support.api import auth
from tests.test_webhooks import Answers, create, detail, settled, wait_for

receiver = test_webhooks.receiver  # fixtures: the merchant's endpoint, and an API key with its webhook secret
merchant = test_webhooks.merchant
PUBLIC = "93.184.216.34"


def teredo(server: str, client: str) -> str:
    """A Teredo address: 2001:0::/32, the server's IPv4, then the client's IPv4 with its bits inverted."""
    value = (0x20010000 << 96) | (int(ipaddress.IPv4Address(server)) << 64) | (0xFFFFFFFF ^ int(ipaddress.IPv4Address(client)))
    return str(ipaddress.IPv6Address(value))


async def expired_session(http, server, services, key, callback_url) -> str:
    created = await create(http, server, key, callback_url=callback_url, ttl_s=60)
    services.store.update_session(created["id"], expires_at=time.time() - 1)
    assert services.lifecycle.expire_due() == 1
    return created["id"]


class Listener:
    """A bare TCP port that counts who connects: proof that nothing reached it, whatever was sent."""

    def __init__(self) -> None:
        self.connections = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accepted, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def listener():
    ear = Listener()
    await ear.start()
    yield ear
    await ear.close()


@pytest.fixture
async def strict_server(aiohttp_server, make_app, settings):
    """The real app as deployed: callbacks must be public https addresses."""
    return await aiohttp_server(make_app(settings.replace(webhook_allow_private=False)))


# -- 6. DNS rebinding and addresses that embed a private IPv4 -------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
        "64:ff9b::a00:5",  # NAT64 of 10.0.0.5
        "64:ff9b:1::808:808",  # local-use NAT64: its mapping is the local translator's, never public
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.1.2.3",
        "::7f00:1",  # IPv4-compatible (deprecated)
        teredo("65.54.227.120", "10.0.0.1"),  # Teredo with a private client
        teredo("127.0.0.1", "8.8.8.8"),  # Teredo with a loopback server
        "fd00::1",
        "ff02::1",
    ],
)
def test_addresses_that_lead_into_a_private_network_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))
    with pytest.raises(DestinationError):
        check_destination(f"https://[{address}]/hook", allow_private=False)


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8", teredo("65.54.227.120", "8.8.8.8"), "2606:4700::1", PUBLIC],
)
def test_transition_addresses_of_public_ipv4_stay_usable(address):
    assert is_public(ipaddress.ip_address(address))


async def test_dns_rebinding_never_reaches_the_internal_address(http, strict_server, listener):
    """The name answers a public address when checked and 127.0.0.1 afterwards. The delivery connects to
    the address it checked (unreachable here), never to the loopback listener, and resolves once."""
    services = strict_server.app[SERVICES]
    key, _ = create_api_key(services.store, "Rebinder", sandbox=True)
    dns = Answers([PUBLIC], [PUBLIC], ["127.0.0.1"])  # creation check, delivery check, then the rebind
    services.outbox.resolver = dns
    services.outbox.timeout_s = 1.0
    services.outbox.max_age_s = 0.5
    session_id = await expired_session(http, strict_server, services, key, f"https://rebind.example:{listener.port}/hook")
    assert await wait_for(lambda: settled(services, session_id), timeout=15)

    assert listener.connections == 0
    [delivery] = (await detail(http, strict_server, key, session_id))["webhooks"]
    assert delivery["delivered_at"] is None and all(a["status_code"] is None and a["error"] for a in delivery["attempt_log"])
    assert len(dns.lookups) == 1 + delivery["attempts"]  # one lookup per check; the connection made none


async def test_the_delivery_connects_to_the_checked_address_and_names_the_host(http, server, services, receiver, merchant):
    """Pinning still speaks to the merchant by name: the Host header carries it, the TCP peer is the
    address from the single lookup (a later answer pointing elsewhere is never used)."""
    key, _ = merchant
    dns = Answers(["127.0.0.1"], ["127.0.0.9"])  # 127.0.0.9 has no receiver
    services.outbox.resolver = dns
    name = f"hooks.merchant.example:{receiver.server.port}"
    session_id = await expired_session(http, server, services, key, f"http://{name}/hook")
    assert await wait_for(lambda: settled(services, session_id))
    [request] = receiver.requests
    assert request["headers"]["Host"] == name
    [delivery] = (await detail(http, server, key, session_id))["webhooks"]
    assert delivery["delivered_at"] and dns.lookups == ["hooks.merchant.example"]


@pytest.mark.parametrize(
    "answer",
    [["10.0.0.5"], ["127.0.0.1"], ["64:ff9b::a9fe:a9fe"], ["2002:7f00:1::1"], [PUBLIC, "192.168.0.10"], ["::ffff:169.254.169.254"]],
)
async def test_session_creation_refuses_a_name_that_resolves_inside(http, strict_server, answer):
    services = strict_server.app[SERVICES]
    key, _ = create_api_key(services.store, "Shop", sandbox=True)
    services.outbox.resolver = Answers(answer)
    body = {"reference_id": "x", "callback_url": "https://hooks.shop.example/realname"}
    async with http.post(strict_server.make_url("/api/v1/sessions"), json=body, headers=auth(key)) as response:
        assert response.status == 422
        problem = await response.json()
    assert problem["errors"] == [{"field": "callback_url", "message": "destination resolves to a non-public address"}]


class FailingDns:
    def __init__(self, hang: bool) -> None:
        self.hang = hang

    async def addresses(self, host: str, port: int) -> list[str]:
        if self.hang:
            await asyncio.sleep(3600)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


@pytest.mark.parametrize("hang", [False, True], ids=["lookup_fails", "lookup_hangs"])
async def test_session_creation_survives_a_dns_failure(http, strict_server, monkeypatch, hang):
    """A passing DNS failure must not fail the merchant's customer: the session is created (delivery
    will resolve and check again before connecting)."""
    monkeypatch.setattr("server.webhooks.RESOLVE_AT_CREATION_TIMEOUT_S", 0.3)
    services = strict_server.app[SERVICES]
    key, _ = create_api_key(services.store, "Shop", sandbox=True)
    services.outbox.resolver = FailingDns(hang)
    body = {"reference_id": "x", "callback_url": "https://hooks.shop.example/realname"}
    async with http.post(strict_server.make_url("/api/v1/sessions"), json=body, headers=auth(key)) as response:
        assert response.status == 201


# -- 7. a merchant answering with an endless body -------------------------------------------------------

HUGE = 200 * 1024 * 1024


def reset_peak_memory() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # Linux: VmHWM starts again from the current RSS


def peak_memory() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("status", [200, 500])
async def test_a_huge_answer_is_not_read(http, server, services, aiohttp_server, merchant, status):
    sent = {"bytes": 0}
    chunk = b"\0" * 65536

    async def flood(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=status, headers={"Content-Type": "application/octet-stream"})
        response.content_length = HUGE
        await response.prepare(request)
        try:
            while sent["bytes"] < HUGE:
                await response.write(chunk)
                sent["bytes"] += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the sender hung up, as it should
        return response

    app = web.Application()
    app.router.add_post("/hook", flood)
    merchant_server = await aiohttp_server(app)
    key, _ = merchant
    services.outbox.max_age_s = 0.5
    reset_peak_memory()
    before = peak_memory()
    session_id = await expired_session(http, server, services, key, str(merchant_server.make_url("/hook")))
    assert await wait_for(lambda: settled(services, session_id), timeout=30)

    grown = peak_memory() - before  # the peak, so memory taken and given back still counts
    assert grown < 64 * 1024 * 1024, f"memory grew by {grown / 2**20:.0f} MiB"
    assert sent["bytes"] < HUGE // 4  # the sender stopped reading; the merchant could not push it all
    [delivery] = (await detail(http, server, key, session_id))["webhooks"]
    assert delivery["attempt_log"][0]["status_code"] == status
    if status == 200:
        assert delivery["delivered_at"] and delivery["attempt_log"][0]["error"] is None
    else:
        assert delivery["delivered_at"] is None and delivery["attempt_log"][0]["error"] == "HTTP 500"


# -- 8. one merchant's hanging endpoint -----------------------------------------------------------------


async def test_a_hanging_merchant_does_not_delay_another(http, server, services, aiohttp_server, receiver):
    held: list[web.Request] = []
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        held.append(request)
        await release.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_post("/hook", hang)
    slow = await aiohttp_server(app)
    services.outbox.timeout_s = 60.0  # A's deliveries stay stuck for the whole test
    key_a, _ = create_api_key(services.store, "Slow Shop", sandbox=True)
    key_b, _ = create_api_key(services.store, "Quick Shop", sandbox=True)
    a_sessions = [(await create(http, server, key_a, callback_url=str(slow.make_url("/hook")), ttl_s=60))["id"] for _ in range(40)]
    for session_id in a_sessions:
        services.store.update_session(session_id, expires_at=time.time() - 1)
    assert services.lifecycle.expire_due() == 40
    assert await wait_for(lambda: len(held) >= 1)
    try:
        b_session = await expired_session(http, server, services, key_b, receiver.url)
        assert await wait_for(lambda: settled(services, b_session))
        assert [json.loads(r["body"])["data"]["session"]["id"] for r in receiver.requests] == [b_session]
        assert not any(settled(services, s) for s in a_sessions)  # A's 40 are all still waiting...
        assert len(held) == services.outbox.per_merchant == 2  # ...with only A's share of slots in use
    finally:
        release.set()


def test_fair_picking_interleaves_merchants_and_respects_the_caps():
    due = [{"id": f"a{i}", "api_key_id": 1} for i in range(5)] + [{"id": "b0", "api_key_id": 2}, {"id": "c0", "merchant_id": 7, "api_key_id": 3}]
    assert [e["id"] for e in pick_fairly(due, Counter(), per_merchant=2, free=10)] == ["a0", "b0", "c0", "a1"]
    assert [e["id"] for e in pick_fairly(due, Counter({("key", 1): 2}), per_merchant=2, free=10)] == ["b0", "c0"]
    assert [e["id"] for e in pick_fairly(due, Counter(), per_merchant=2, free=2)] == ["a0", "b0"]


# -- 9. X-Forwarded-For spoofing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "proxies",
    [{"trust_forwarded": True}, {"trusted_proxies": ["127.0.0.0/8"]}],
    ids=["trust_forwarded", "trusted_proxies"],
)
async def test_a_spoofed_forwarded_for_does_not_escape_the_page_limit(aiohttp_server, make_app, settings, http, proxies):
    server = await aiohttp_server(make_app(settings.replace(page_rate_per_minute=6, **proxies)))  # a burst of 3
    statuses = []
    for i in range(8):  # the client writes the left part; our proxy appends the address it saw
        headers = {"X-Forwarded-For": f"10.9.{i}.{i}, 198.51.100.7"}
        async with http.get(server.make_url("/privacy"), headers=headers) as response:
            statuses.append(response.status)
    assert statuses[:3] == [200, 200, 200] and set(statuses[3:]) == {429}
    async with http.get(server.make_url("/privacy"), headers={"X-Forwarded-For": "198.51.100.8"}) as response:
        assert response.status == 200  # another customer behind the same proxy is not punished


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(aiohttp_server, make_app, settings, http):
    server = await aiohttp_server(make_app(settings.replace(page_rate_per_minute=6, trusted_proxies=["10.0.0.0/8"])))
    statuses = []
    for i in range(8):
        async with http.get(server.make_url("/privacy"), headers={"X-Forwarded-For": f"203.0.113.{i}"}) as response:
            statuses.append(response.status)
    assert set(statuses[3:]) == {429}


async def test_a_spoofed_forwarded_for_does_not_escape_the_bad_key_limit(aiohttp_server, make_app, settings, http):
    server = await aiohttp_server(make_app(settings.replace(trust_forwarded=True)))
    statuses = []
    for i in range(14):  # 10 wrong keys in a burst per client address
        headers = {**auth(f"rn_test_wrong{i}"), "X-Forwarded-For": f"10.0.{i}.1, 198.51.100.7"}
        async with http.get(server.make_url("/api/v1/sessions/x"), headers=headers) as response:
            statuses.append(response.status)
    assert 429 in statuses and set(statuses) <= {401, 429}


@pytest.mark.parametrize(
    "peer, header, trusted, trust_peer, expected",
    [
        ("10.0.0.2", ["6.6.6.6, 198.51.100.7"], ["10.0.0.0/8"], False, "198.51.100.7"),
        ("10.0.0.2", ["6.6.6.6, 198.51.100.7, 10.0.0.9"], ["10.0.0.0/8"], False, "198.51.100.7"),  # two proxies
        ("10.0.0.2", ["6.6.6.6", "198.51.100.7"], ["10.0.0.0/8"], False, "198.51.100.7"),  # two header lines
        ("203.0.113.5", ["6.6.6.6"], ["10.0.0.0/8"], False, "203.0.113.5"),  # not from a proxy: ignored
        ("127.0.0.1", ["6.6.6.6, 198.51.100.7"], [], True, "198.51.100.7"),  # trust_forwarded: one hop
        ("127.0.0.1", ["junk, ::1, not-an-ip"], [], True, "127.0.0.1"),
        ("127.0.0.1", [], [], True, "127.0.0.1"),
        ("10.0.0.2", ["[2001:db8::7]:4711"], ["10.0.0.0/8"], False, "2001:db8::7"),
        (None, ["6.6.6.6"], [], False, "unknown"),
    ],
)
def test_the_client_is_what_the_trusted_proxy_appended(peer, header, trusted, trust_peer, expected):
    assert forwarded_client(peer, header, trusted_networks(tuple(trusted)), trust_peer) == expected


# -- 15. secrets in malformed requests and in logs ------------------------------------------------------

TOKEN = "Lk3x9fT0kenSecret_abcdefghijklmnopqrstuvwxyz0123"
API_KEY = "rn_live_ApiKeySecret_abcdefghijklmnopqrstuvwxyz012"


async def exchange(server, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 15)
    finally:
        writer.close()


MALFORMED = [
    ("junk_after_version", f"GET /v/{TOKEN} HTTP/1.1 junk\r\nHost: t\r\n\r\n"),
    ("control_char_in_path", f"GET /v/{TOKEN}\x01 HTTP/1.1\r\nHost: t\r\n\r\n"),
    ("bad_method", f"G\x01T /v/{TOKEN} HTTP/1.1\r\nHost: t\r\n\r\n"),
    ("bad_header_value", f"GET /api/v1/sessions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {API_KEY}\x01\r\n\r\n"),
    ("bad_header_name", f"GET /api/v1/sessions HTTP/1.1\r\nHost: t\r\nX Key: {API_KEY}\r\n\r\n"),
    ("bad_cookie_line", f"GET /verify HTTP/1.1\r\nHost: t\r\nCookie: rn_browser={TOKEN}\x7f\r\n\r\n"),
]


@pytest.mark.parametrize("request_bytes", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
async def test_a_malformed_request_leaks_no_secret(server, caplog, request_bytes):
    caplog.set_level(logging.DEBUG)
    answer = await exchange(server, request_bytes.encode("latin-1"))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n")[0]
    assert body == b"400 Bad Request"
    for secret in (TOKEN, API_KEY, "ApiKeySecret"):
        assert secret.encode() not in answer
        assert secret not in caplog.text
    assert "Traceback" not in caplog.text
    assert "refused a malformed HTTP request" in caplog.text


async def test_the_default_access_log_hides_link_tokens_and_keys(server, http, caplog):
    caplog.set_level(logging.DEBUG)
    async with http.get(server.make_url(f"/v/{TOKEN}")) as response:
        assert response.status < 500
    async with http.get(server.make_url("/api/v1/sessions/x"), headers=auth(API_KEY)) as response:
        assert response.status == 401
    assert TOKEN not in caplog.text and "ApiKeySecret" not in caplog.text


def test_third_party_loggers_are_quieted():
    from server.web.security import CHATTY_LOGGERS, quiet_third_party_logs

    saved = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    try:
        quiet_third_party_logs()
        assert not logging.getLogger("aioice.ice").isEnabledFor(logging.INFO)  # ICE pairs name customer IPs
        assert not logging.getLogger("aiortc.rtcpeerconnection").isEnabledFor(logging.INFO)
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


# -- 16. the Server header ------------------------------------------------------------------------------


async def test_no_versions_in_the_server_header(server, http):
    answers = []
    for path, headers in (("/privacy", {}), ("/api/v1/sessions/x", {}), ("/static/realname.css", {}), ("/no-such-page", {})):
        async with http.get(server.make_url(path), headers=headers) as response:
            answers.append((path, response.status, response.headers.getall("Server", [])))
    assert [status for _, status, _ in answers] == [200, 401, 200, 404]
    raw = await exchange(server, b"GET /x HTTP/1.1 junk\r\nHost: t\r\n\r\n")
    raw_servers = [line.split(b":", 1)[1].strip() for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n") if line.lower().startswith(b"server:")]
    assert raw_servers == [b"Realname"]
    for path, _, servers in answers:
        assert servers == ["Realname"], path
