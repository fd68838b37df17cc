"""Webhooks: the signature a merchant verifies, the SSRF guard on callback URLs, and delivery through the
outbox to a real local receiver (retries with backoff, giving up, the delivery log in the API)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from itertools import pairwise
from pathlib import Path

import pytest
from aiohttp import web
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from server.api.auth import create_api_key
from server.webhooks import DestinationError, check_destination, sign, standard_headers, standard_secret, verify_signature
from tests.support.api import auth
from tests.support.postgres import BACKENDS, database_for


@pytest.fixture(params=BACKENDS)
def database_url(request):
    """Every test here runs on SQLite and on PostgreSQL."""
    return database_for(request)


SECRET = b"whsec_test-secret"


# -- the signature ------------------------------------------------------------------------------------


def test_signature_round_trip():
    body = b'{"id":"evt_1","type":"session.approved"}'
    now = int(time.time())
    header = sign(SECRET, now, body)
    assert header.startswith(f"t={now},v1=") and len(header.split("v1=")[1]) == 64
    assert verify_signature(SECRET, header, body)
    assert verify_signature(SECRET, header, body, now=now + 299)


@pytest.mark.parametrize(
    "change",
    ["tampered_body", "extra_whitespace", "wrong_secret", "old_timestamp", "future_timestamp", "swapped_timestamp"],
)
def test_signature_refuses(change):
    body = b'{"id":"evt_1","type":"session.approved"}'
    now = int(time.time())
    header = sign(SECRET, now, body)
    if change == "tampered_body":
        assert not verify_signature(SECRET, header, body.replace(b"approved", b"rejected"))
    elif change == "extra_whitespace":  # the MAC is over the raw bytes: re-serialised JSON does not verify
        assert not verify_signature(SECRET, header, json.dumps(json.loads(body)).encode())
    elif change == "wrong_secret":
        assert not verify_signature(b"whsec_other", header, body)
    elif change == "old_timestamp":
        old = sign(SECRET, now - 301, body)
        assert not verify_signature(SECRET, old, body)
        assert not verify_signature(SECRET, header, body, now=now + 3600)
    elif change == "future_timestamp":
        assert not verify_signature(SECRET, sign(SECRET, now + 3600, body), body)
    elif change == "swapped_timestamp":  # a valid MAC moved to a fresh timestamp
        mac = sign(SECRET, now - 3600, body).split("v1=")[1]
        assert not verify_signature(SECRET, f"t={now},v1={mac}", body)


@pytest.mark.parametrize("header", ["", "garbage", "t=abc,v1=00", "v1=" + "0" * 64, "t=1", "t=,v1=", "t=1=2,v1", ",,,"])
def test_signature_malformed_headers(header):
    assert not verify_signature(SECRET, header, b"{}")


# -- the destination guard ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://shop.example.com/hooks/realname", "https://93.184.216.34/hook", "https://[2606:2800:220:1::]/hook", "https://example.com:8443/x?y=1"],
)
def test_public_https_destinations_are_accepted(url):
    check_destination(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://shop.example.com/hook",  # plain http
        "https://localhost/hook",
        "https://api.localhost/hook",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://127.0.0.1/hook",
        "https://127.8.9.10/hook",
        "https://10.0.0.5/hook",
        "https://172.16.3.4/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.0.1/hook",
        "https://0.0.0.0/hook",
        "https://[::1]/hook",
        "https://[fc00::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://224.0.0.1/hook",
        "ftp://example.com/hook",
        "https:///hook",
        "/relative/hook",
        "https://[::1/hook",
        "https://example.com:99999/hook",
    ],
)
def test_private_or_malformed_destinations_are_refused(url):
    with pytest.raises(DestinationError):
        check_destination(url, allow_private=False)


def test_private_destinations_when_the_operator_allows_them():
    for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook", "https://10.0.0.5/hook", "http://[::1]:9000/"):
        check_destination(url, allow_private=True)
    for url in ("ftp://127.0.0.1/", "http:///x", "http://127.0.0.1:70000/", "javascript:alert(1)"):
        with pytest.raises(DestinationError):
            check_destination(url, allow_private=True)


async def test_the_api_refuses_private_callbacks_by_default(aiohttp_server, make_app, settings, http):
    server = await aiohttp_server(make_app(settings.replace(webhook_allow_private=False)))
    from server.http.services import SERVICES

    key, _ = create_api_key(server.app[SERVICES].store, "Shop", sandbox=True)
    server.app[SERVICES].outbox.resolver = Answers(["93.184.216.34"])
    for url in ("http://127.0.0.1:9/hook", "https://169.254.169.254/", "https://localhost/x", "http://shop.example.com/hook"):
        async with http.post(server.make_url("/api/v1/sessions"), json={"reference_id": "x", "callback_url": url}, headers=auth(key)) as response:
            assert response.status == 422
            problem = await response.json()
            assert problem["errors"][0]["field"] == "callback_url"
    async with http.post(
        server.make_url("/api/v1/sessions"), json={"reference_id": "x", "callback_url": "https://shop.example.com/hook"}, headers=auth(key)
    ) as response:
        assert response.status == 201


# -- delivery to a real receiver ------------------------------------------------------------------------


class Receiver:
    """The merchant's endpoint: records every request and answers with the next scripted status."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append({"headers": dict(request.headers), "body": await request.read(), "at": time.monotonic(), "path": request.path})
        status = self.statuses.pop(0) if self.statuses else 200
        if 300 <= status < 400:
            return web.Response(status=status, headers={"Location": "/elsewhere"})
        return web.Response(status=status, text="ok")


@pytest.fixture
async def receiver(aiohttp_server):
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    app.router.add_post("/elsewhere", hook.handle)
    hook.server = await aiohttp_server(app)
    hook.url = str(hook.server.make_url("/hook"))
    return hook


@pytest.fixture
def merchant(services):
    """An API key with its webhook signing secret, as the operator's CLI shows them once."""
    key, secret = create_api_key(services.store, "Hook Shop", sandbox=True)
    return key, secret.encode()


async def wait_for(condition, timeout: float = 30.0) -> bool:  # bounds a hang only: true returns at once
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return bool(condition())


async def create(http, server, key, **body):
    body.setdefault("reference_id", "customer-7")
    async with http.post(server.make_url("/api/v1/sessions"), json=body, headers=auth(key)) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def detail(http, server, key, session_id):
    async with http.get(server.make_url(f"/api/v1/sessions/{session_id}"), headers=auth(key)) as response:
        assert response.status == 200
        return await response.json()


def expire(services, session_id: str) -> None:
    services.store.update_session(session_id, expires_at=time.time() - 1)
    assert services.lifecycle.expire_due() == 1


def settled(services, session_id: str):
    """The session's one webhook once it is delivered or given up."""
    events = services.store.webhook_events_for(session_id)
    return bool(events) and all(e["delivered_at"] or e["gave_up_at"] for e in events)


async def test_a_final_state_is_delivered_signed(http, server, services, receiver, merchant):
    key, secret = merchant
    created = await create(http, server, key, callback_url=receiver.url, ttl_s=60)
    expire(services, created["id"])
    assert await wait_for(lambda: settled(services, created["id"]))

    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert verify_signature(secret, headers["Realname-Signature"], body)
    assert not verify_signature(b"whsec_someone-else", headers["Realname-Signature"], body)
    assert headers["Content-Type"] == "application/json" and headers["User-Agent"] == "Realname-Webhooks/1"
    event = json.loads(body)
    assert event["id"] == headers["Realname-Event-Id"] and event["id"].startswith("evt_")
    assert event["type"] == "session.expired" and event["created_at"].endswith("Z")
    assert event["data"]["session"] == {
        "id": created["id"],
        "reference_id": "customer-7",
        "status": "expired",
        "decision": None,
        "failure_reason": None,
        "sandbox": True,
        "signals": [],
        "review": None,
        "document": None,
        "path": None,
        "receipt": services.store.session(created["id"]).receipt,  # every final state is signed
    }
    assert event["data"]["session"]["receipt"]

    data = await detail(http, server, key, created["id"])
    [delivery] = data["webhooks"]
    assert delivery["id"] == event["id"] and delivery["type"] == "session.expired"
    assert delivery["attempts"] == 1 and delivery["delivered_at"] and delivery["gave_up_at"] is None
    assert delivery["next_attempt_at"] is None
    [attempt] = delivery["attempt_log"]
    assert attempt["status_code"] == 200 and attempt["error"] is None and attempt["duration_ms"] >= 0 and attempt["at"]
    actions = [e["action"] for e in data["events"]]
    assert "webhook.queued" in actions and "webhook.delivered" in actions


async def test_the_secret_is_per_key(http, server, services, receiver, merchant):
    key, secret = merchant
    other_key, other_secret = create_api_key(services.store, "Other Shop", sandbox=True)
    mine = await create(http, server, key, callback_url=receiver.url, ttl_s=60)
    theirs = await create(http, server, other_key, callback_url=receiver.url, ttl_s=60)
    expire(services, mine["id"])
    expire(services, theirs["id"])
    assert await wait_for(lambda: len(receiver.requests) == 2)
    by_session = {json.loads(r["body"])["data"]["session"]["id"]: r for r in receiver.requests}
    for session_id, right, wrong in ((mine["id"], secret, other_secret.encode()), (theirs["id"], other_secret.encode(), secret)):
        request = by_session[session_id]
        assert verify_signature(right, request["headers"]["Realname-Signature"], request["body"])
        assert not verify_signature(wrong, request["headers"]["Realname-Signature"], request["body"])


async def test_retries_with_backoff_until_delivered(http, server, services, receiver, merchant):
    key, secret = merchant
    receiver.statuses = [500, 500, 200]
    created = await create(http, server, key, callback_url=receiver.url, ttl_s=60)
    expire(services, created["id"])
    assert await wait_for(lambda: settled(services, created["id"]))

    assert len(receiver.requests) == 3
    ids = {r["headers"]["Realname-Event-Id"] for r in receiver.requests}
    assert len(ids) == 1  # the same event, so the merchant can deduplicate
    assert len({r["body"] for r in receiver.requests}) == 1
    for request in receiver.requests:
        assert verify_signature(secret, request["headers"]["Realname-Signature"], request["body"])
    gaps = [b["at"] - a["at"] for a, b in pairwise(receiver.requests)]
    assert all(gap >= 0.15 for gap in gaps), gaps  # settings.webhook_retry_base_s is 0.2 in tests

    [delivery] = (await detail(http, server, key, created["id"]))["webhooks"]
    assert delivery["attempts"] == 3 and delivery["delivered_at"] and delivery["gave_up_at"] is None
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 200]
    assert [a["error"] for a in delivery["attempt_log"]] == ["HTTP 500", "HTTP 500", None]


async def test_redirects_are_not_followed(http, server, services, receiver, merchant):
    key, _ = merchant
    receiver.statuses = [307, 200]
    created = await create(http, server, key, callback_url=receiver.url, ttl_s=60)
    expire(services, created["id"])
    assert await wait_for(lambda: settled(services, created["id"]))
    assert [r["path"] for r in receiver.requests] == ["/hook", "/hook"]
    [delivery] = (await detail(http, server, key, created["id"]))["webhooks"]
    assert [a["status_code"] for a in delivery["attempt_log"]] == [307, 200]


async def test_gives_up_after_the_maximum_age(http, server, services, receiver, merchant):
    key, _ = merchant
    services.outbox.max_age_s = 0.5
    receiver.statuses = [500] * 20
    created = await create(http, server, key, callback_url=receiver.url, ttl_s=60)
    expire(services, created["id"])
    assert await wait_for(lambda: settled(services, created["id"]))

    data = await detail(http, server, key, created["id"])
    [delivery] = data["webhooks"]
    assert delivery["gave_up_at"] and delivery["delivered_at"] is None and delivery["next_attempt_at"] is None
    assert 1 <= delivery["attempts"] == len(delivery["attempt_log"]) == len(receiver.requests) <= 3
    assert all(a["status_code"] == 500 for a in delivery["attempt_log"])
    assert "webhook.given_up" in [e["action"] for e in data["events"]]
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == delivery["attempts"]  # nothing more once given up


async def test_an_unreachable_receiver_is_recorded(http, server, services, aiohttp_server, merchant):
    key, _ = merchant
    services.outbox.max_age_s = 0.5
    gone = await aiohttp_server(web.Application())
    url = str(gone.make_url("/hook"))
    await gone.close()  # nothing listens there any more
    created = await create(http, server, key, callback_url=url, ttl_s=60)
    expire(services, created["id"])
    assert await wait_for(lambda: settled(services, created["id"]))
    [delivery] = (await detail(http, server, key, created["id"]))["webhooks"]
    assert delivery["gave_up_at"] and delivery["attempts"] >= 1
    assert all(a["status_code"] is None and a["error"] for a in delivery["attempt_log"])


async def test_a_host_that_cannot_be_encoded_is_a_failed_attempt_not_a_stuck_event(http, server, services, merchant):
    key, _ = merchant
    services.outbox.max_age_s = 0.5
    created = await create(http, server, key, callback_url="http://" + "a" * 70 + ".example.com/hook", ttl_s=60)
    expire(services, created["id"])
    assert await wait_for(lambda: settled(services, created["id"]))
    [delivery] = (await detail(http, server, key, created["id"]))["webhooks"]
    assert delivery["gave_up_at"] and delivery["attempt_log"][0]["status_code"] is None
    assert delivery["attempt_log"][0]["error"]


class Answers:
    """DNS for tests (the true edge): each lookup returns the next answer; the last one repeats."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []

    async def addresses(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.mark.parametrize("case", ["plain_http", "name_now_private"])
async def test_destinations_are_checked_again_at_delivery(http, server, services, receiver, merchant, case):
    """A callback accepted earlier (or a public name that now resolves to a private address) is not called."""
    key, _ = merchant
    services.outbox.allow_private = False
    services.outbox.max_age_s = 0.5
    services.outbox.resolver = Answers(["127.0.0.1"])
    url = receiver.url if case == "plain_http" else f"https://shop.example.com:{receiver.server.port}/hook"
    created = await create(http, server, key, callback_url=url, ttl_s=60)
    expire(services, created["id"])
    assert await wait_for(lambda: settled(services, created["id"]))
    assert receiver.requests == []
    [delivery] = (await detail(http, server, key, created["id"]))["webhooks"]
    expected = "callback_url must use https" if case == "plain_http" else "destination resolves to a non-public address"
    assert delivery["attempt_log"][0]["error"] == expected


async def test_redaction_sends_one_confirmation_without_personal_data(http, server, services, receiver, merchant):
    key, secret = merchant
    created = await create(http, server, key, callback_url=receiver.url)
    for _ in range(2):
        async with http.delete(server.make_url(f"/api/v1/sessions/{created['id']}"), headers=auth(key)) as response:
            assert response.status == 200
    assert await wait_for(lambda: settled(services, created["id"]))
    await asyncio.sleep(0.3)
    [request] = receiver.requests  # no session.failed for the redaction, and one event for two DELETEs
    assert verify_signature(secret, request["headers"]["Realname-Signature"], request["body"])
    event = json.loads(request["body"])
    assert event["type"] == "session.redacted"
    assert event["data"]["session"]["reference_id"] is None
    assert event["data"]["session"]["status"] == "failed" and event["data"]["session"]["failure_reason"] == "redacted"


async def test_no_callback_url_no_webhook(http, server, services, receiver, merchant):
    key, _ = merchant
    created = await create(http, server, key, ttl_s=60)
    expire(services, created["id"])
    await asyncio.sleep(0.2)
    assert services.store.webhook_events_for(created["id"]) == [] and receiver.requests == []


# -- Standard Webhooks (issue 29) -----------------------------------------------------------------------


def readme_snippets(heading: str) -> dict[str, object]:
    """The README's Python blocks under `heading`, run: what a merchant copies is what is tested."""
    text = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = text.split(heading + "\n", 1)[1].split("\n#", 1)[0]
    namespace: dict[str, object] = {}
    for block in re.findall(r"```python\n(.*?)```", section, re.S):
        exec(block, namespace)  # noqa: S102 - our own README
    return namespace


def test_the_standard_secret_is_the_secret_in_base64():
    secret = b"whsec_" + b"k" * 43
    derived = standard_secret(secret)
    assert derived.startswith("whsec_") and base64.b64decode(derived.removeprefix("whsec_")) == secret
    now = int(time.time())
    assert Webhook(derived).verify(b'{"a":1}', standard_headers(secret, "evt_1", now, b'{"a":1}')) == {"a": 1}


async def test_deliveries_verify_with_the_standard_webhooks_library_and_the_readme(http, server, services, receiver, merchant):
    key, secret = merchant
    receiver.statuses = [500, 200]  # a retry keeps the id and signs again
    created = await create(http, server, key, callback_url=receiver.url, ttl_s=60)
    expire(services, created["id"])
    assert await wait_for(lambda: settled(services, created["id"]))
    assert len(receiver.requests) == 2

    readme = readme_snippets("### Verifying a webhook")
    whsec = standard_secret(secret)
    for request in receiver.requests:
        headers, body = request["headers"], request["body"]
        event = Webhook(whsec).verify(body, headers)  # the library from PyPI, as a merchant would call it
        assert event["id"] == headers["webhook-id"] == headers["Realname-Event-Id"]
        assert headers["webhook-timestamp"] == headers["Realname-Signature"].split(",")[0].removeprefix("t=")
        assert headers["webhook-signature"].startswith("v1,")
        assert readme["verify"](secret.decode(), headers["Realname-Signature"], body)
        assert readme["verify_standard"](whsec, headers, body)
        # The old secret keeps working for Realname-Signature; another merchant's does not verify either form.
        assert verify_signature(secret, headers["Realname-Signature"], body)
        other = standard_secret(b"whsec_someone-else")
        with pytest.raises(WebhookVerificationError):
            Webhook(other).verify(body, headers)
        assert not readme["verify_standard"](other, headers, body)
        with pytest.raises(WebhookVerificationError):
            Webhook(whsec).verify(body.replace(b"expired", b"approved"), headers)
        assert not readme["verify_standard"](whsec, headers, body.replace(b"expired", b"approved"))
        stale = headers | {"webhook-timestamp": str(int(time.time()) - 3600)}
        with pytest.raises(WebhookVerificationError):
            Webhook(whsec).verify(body, stale)
        assert not readme["verify_standard"](whsec, stale, body)
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1


def test_the_cli_shows_the_standard_secret(tmp_path, monkeypatch, capsys):
    from server.cli import main as cli

    monkeypatch.setenv("REALNAME_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REALNAME_EVIDENCE_KEY_FILE", str(tmp_path / "keys" / "evidence.key"))
    assert cli(["merchants", "create", "acme", "--display-name", "Acme"]) == 0
    capsys.readouterr()
    assert cli(["keys", "create", "--merchant", "acme", "--sandbox", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["standard_webhook_secret"] == standard_secret(shown["webhook_secret"].encode())
    Webhook(shown["standard_webhook_secret"])  # the library accepts it as it is
