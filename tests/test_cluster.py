"""Two Realname instances (real processes) on one real PostgreSQL database: a rate limit counted once, a
live check on one untouched by the other's restart, a DELETE on one ending a check on the other, each of
200 webhooks delivered once even when an instance is killed mid-delivery. And the refusals: another
cookie secret or evidence key does not start."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections import Counter

import pytest
from aiohttp import web

from realname_tools.client import HeldTrack, HostedFlowClient, load_clip
from server.api.auth import create_api_key
from server.app import create_app
from server.cluster import SharedFailureLimiter, SharedRateLimiter, instance_id
from server.config import ConfigError, Settings
from server.http.services import SERVICES
from server.receipts.keys import keyring_text, new_key
from server.storage.crypto import WrongKeyError
from server.storage.shared import SharedState
from server.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, verify_signature
from tests.support.api import auth
from tests.support.instances import Cluster, Instance, free_port
from tests.support.media import photo, video
from tests.support.waiting import eventually

BLINK_CLIP = "blink_frontal_man_phone_portrait_14s.mp4"
BLINK_ID = "vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg"


@pytest.fixture
def cluster(postgres, tmp_path):
    cluster = Cluster(postgres.new_database(), tmp_path, api_rate_per_minute="6", challenge_timeout_s="60")
    yield cluster.start()
    cluster.stop()


async def test_a_rate_limit_holds_across_instances(cluster, http):
    key, _secret = create_api_key(cluster.store, "Shop", sandbox=True)
    answers: Counter = Counter()
    for index in range(10):
        instance = (cluster.a, cluster.b)[index % 2]
        async with http.get(f"{instance.url}/api/v1/sessions/ses_none", headers=auth(key)) as response:
            answers[(instance.port, response.status)] += 1
    allowed = sum(n for (_, status), n in answers.items() if status != 429)
    assert 3 <= allowed <= 4, answers  # a burst of 3 (6 a minute) for the key, not 3 per instance
    assert answers[(cluster.a.port, 429)] and answers[(cluster.b.port, 429)]


async def test_restarting_one_instance_does_not_disturb_a_check_on_the_other(cluster, http):
    key, _secret = create_api_key(cluster.store, "Shop", sandbox=True)
    async with http.post(f"{cluster.a.url}/api/v1/sessions", json={"reference_id": "c-1", "fixed_challenges": ["blink"]}, headers=auth(key)) as response:
        created = await response.json()
    # The pages are served by either instance (the same cookie secret); the live check by instance b.
    on_a = HostedFlowClient(http, cluster.a.url)
    assert await on_a.open(created["url"]) == 303 and await on_a.consent() == 303
    assert (await on_a.upload_document(photo(BLINK_ID).read_bytes()))[0] == 303
    on_b = HostedFlowClient(http, cluster.b.url)
    track = HeldTrack(*load_clip(video(BLINK_CLIP)))
    run = await on_b.start_live(track)
    assert run.offer_error is None
    assert await eventually(lambda: cluster.store.session(created["id"]).status.value == "live", timeout=15)
    assert SharedState(cluster.store, "b").owner_of(created["id"]) == "b"

    cluster.a.kill()
    await asyncio.to_thread(cluster.a.start)  # its start-up recovery has run once it answers
    assert cluster.store.session(created["id"]).status.value == "live"

    track.released.set()
    result = await on_b.wait_result(run, timeout=60)
    await on_b.close()
    assert result is not None and result["status"] == "approved", result
    for instance in (cluster.a, cluster.b):  # the merchant reads the result from either
        async with http.get(f"{instance.url}/api/v1/sessions/{created['id']}", headers=auth(key)) as response:
            assert (await response.json())["status"] == "approved"


async def test_deleting_a_session_on_one_instance_ends_its_check_on_the_other(cluster, http):
    key, _secret = create_api_key(cluster.store, "Shop", sandbox=True)
    created, on_b = await ready_on(cluster.b, http, key)
    run = await on_b.start_live(HeldTrack(*load_clip(video(BLINK_CLIP))))  # never released: the check runs on
    assert await eventually(lambda: cluster.store.session(created["id"]).status.value == "live", timeout=15)
    async with http.delete(f"{cluster.a.url}/api/v1/sessions/{created['id']}", headers=auth(key)) as response:
        tombstone = await response.json()
    assert tombstone["redacted"] and tombstone["status"] == "failed"
    assert await eventually(lambda: run.done.is_set(), timeout=30)  # b ended the check and told the customer
    await on_b.close()
    assert cluster.store.evidence_kinds(created["id"]) == []
    assert "session.redacted" in [row["action"] for row in cluster.store.audit_for(created["id"])]
    assert cluster.store.session(created["id"]).status.value == "failed"


async def ready_on(instance: Instance, http, key: str, reference: str = "c-2") -> tuple[dict, HostedFlowClient]:
    async with http.post(f"{instance.url}/api/v1/sessions", json={"reference_id": reference, "fixed_challenges": ["blink"]}, headers=auth(key)) as response:
        created = await response.json()
    customer = HostedFlowClient(http, instance.url)
    assert await customer.open(created["url"]) == 303 and await customer.consent() == 303
    assert (await customer.upload_document(photo(BLINK_ID).read_bytes()))[0] == 303
    return created, customer


async def test_each_webhook_is_delivered_once_by_two_instances_even_when_one_is_killed(postgres, tmp_path):
    received: list[str] = []
    signatures_ok: list[bool] = []

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        received.append(request.headers[EVENT_ID_HEADER])
        signatures_ok.append(verify_signature(secret.encode(), request.headers[SIGNATURE_HEADER], body))
        await asyncio.sleep(0.1)  # deliveries are under way when the instance dies
        return web.Response(text="ok")

    hook_app = web.Application()
    hook_app.router.add_post("/hook", receive)
    runner = web.AppRunner(hook_app)
    await runner.setup()
    hook_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()
    # An attempt may take 4 s before it counts as failed (the receiver answers in 0.1 s, but the machine is
    # busy); a claim's lease is 3 times that, so only what `a` held when it died can arrive twice.
    cluster = Cluster(postgres.new_database(), tmp_path, webhook_timeout_s="4", webhook_per_merchant="4")
    _key, secret = create_api_key(cluster.store, "Hook Shop", sandbox=True)
    key_id = cluster.store.api_keys()[0].id
    events = [f"evt_{index:03d}" for index in range(200)]
    try:
        await asyncio.to_thread(cluster.start)
        for event_id in events:
            body = json.dumps({"id": event_id, "type": "session.approved"})
            cluster.store.add_webhook_event(event_id, "ses_" + event_id, key_id, "session.approved", f"http://127.0.0.1:{hook_port}/hook", body)

        holders: set[str] = set()

        def both_delivering_and_a_mid_delivery() -> bool:
            rows = cluster.store._all("SELECT claimed_by FROM webhook_events WHERE claimed_by IS NOT NULL AND delivered_at IS NULL")
            now = {row["claimed_by"] for row in rows}
            holders.update(now)
            return holders == {"a", "b"} and "a" in now and len(received) >= 40

        assert await eventually(both_delivering_and_a_mid_delivery, timeout=30)
        cluster.a.kill()
        held = {row["id"] for row in cluster.store._all("SELECT id FROM webhook_events WHERE claimed_by = 'a' AND delivered_at IS NULL")}
        assert held  # what a was delivering when it died

        def all_delivered() -> bool:
            return cluster.store._one("SELECT COUNT(*) AS n FROM webhook_events WHERE delivered_at IS NULL")["n"] == 0

        assert await eventually(all_delivered, timeout=60)  # b takes a's claims over when their lease ends
        counts = Counter(received)
        assert set(counts) == set(events)
        twice = {event_id for event_id, n in counts.items() if n > 1}
        assert twice <= held and max(counts.values()) <= 2  # at least once; a second time only for what a held
        assert all(signatures_ok)
    finally:
        cluster.stop()
        await runner.cleanup()


def test_an_instance_with_another_cookie_secret_or_evidence_key_is_refused(postgres, tmp_path, models):
    url = postgres.new_database()
    evidence_key = base64.b64encode(os.urandom(32)).decode()
    gallery_key = base64.b64encode(os.urandom(32)).decode()
    receipt_keys = keyring_text([new_key()])

    def settings(name: str, **changes: str) -> Settings:
        values = dict(
            data_dir=str(tmp_path / name), database_url=url, instance_id=name, evidence_key=evidence_key, gallery_key=gallery_key,
            receipt_keys=receipt_keys,
            cookie_secret=base64.b64encode(os.urandom(32)).decode(),
        )
        return Settings(**{**values, **changes})  # type: ignore[arg-type]

    first = settings("a")
    services = create_app(first, models)[SERVICES]
    assert isinstance(services.api_limiter, SharedRateLimiter) and isinstance(services.attempts.failures, SharedFailureLimiter)
    assert isinstance(services.attempts.address_failures, SharedFailureLimiter) and services.attempts.address_failures.limit > first.failures_per_window
    services.store.close()
    with pytest.raises(ConfigError, match="REALNAME_COOKIE_SECRET"):
        create_app(settings("b"), models)
    with pytest.raises(WrongKeyError):
        create_app(settings("c", cookie_secret=first.cookie_secret, evidence_key=base64.b64encode(os.urandom(32)).decode()), models)
    with pytest.raises(ConfigError, match="gallery key"):
        create_app(settings("e", cookie_secret=first.cookie_secret, gallery_key=base64.b64encode(os.urandom(32)).decode()), models)
    create_app(settings("d", cookie_secret=first.cookie_secret), models)[SERVICES].store.close()
    assert instance_id(Settings(port=9000)).endswith(":9000")  # distinct for two instances on one host


async def test_one_waiting_line_across_instances_admits_where_a_place_frees_in_arrival_order(postgres, tmp_path):
    import aiohttp

    cluster = Cluster(postgres.new_database(), tmp_path, max_live_sessions="1", challenge_timeout_s="600", start_timeout_s="600")
    clip = load_clip(video(BLINK_CLIP))
    browsers = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(4)]
    try:
        await asyncio.to_thread(cluster.start)
        key, _secret = create_api_key(cluster.store, "Shop", sandbox=True)
        # Both instances full: one held check each (the clip's first frame until released, never here).
        holders = []
        for instance, browser, reference in ((cluster.a, browsers[0], "holder-a"), (cluster.b, browsers[1], "holder-b")):
            created, customer = await ready_on(instance, browser, key, reference)
            assert (await customer.start_live(HeldTrack(*clip))).offer_error is None
            holders.append((created, customer))
        assert await eventually(lambda: all(cluster.store.session(c["id"]).status.value == "live" for c, _ in holders), timeout=30)
        # Nobody but an instance can hand a place over: an offer forwarded without the instances' signature,
        # or with a stale or made-up one, is not found.
        forged = json.dumps({"session_id": holders[0][0]["id"], "sdp": "v=0", "type": "offer", "customer": {}}).encode()
        for signature in (None, "0.0", f"{int(time.time())}.{'0' * 64}"):
            headers = {"Content-Type": "application/json", **({"X-Realname-Line": signature} if signature else {})}
            async with browsers[0].post(f"{cluster.b.url}/internal/line/offer", data=forged, headers=headers) as response:
                assert response.status == 404
        # The first customer queues on a, then the second on b: one line, in that order, on both instances.
        first, on_a = await ready_on(cluster.a, browsers[2], key, "first")
        second, on_b = await ready_on(cluster.b, browsers[3], key, "second")
        assert (await on_a.start_live(HeldTrack(*clip))).offer_error["queue"]["position"] == 1
        assert (await on_b.start_live(HeldTrack(*clip))).offer_error["queue"]["position"] == 2
        for instance in (cluster.a, cluster.b):
            async with browsers[0].get(f"{instance.url}/healthz/details") as response:
                line = (await response.json())["capacity"]
            assert line["waiting"] == 2 and line["waiting_present"] == 2 and line["live_checks"] == 1

        admitted: list[str] = []

        async def keep_asking(name: str, customer: HostedFlowClient) -> None:
            """As the waiting page does: ask again when told, until admitted."""
            while True:
                run = await customer.start_live(HeldTrack(*clip))
                if run.offer_error is None:
                    admitted.append(name)
                    return
                assert run.offer_error["code"] == "busy", run.offer_error
                await asyncio.sleep(run.offer_error["queue"]["retry_after_s"])

        asking = [asyncio.create_task(keep_asking("first", on_a)), asyncio.create_task(keep_asking("second", on_b))]
        await asyncio.sleep(4)  # both ask on schedule: both present
        assert admitted == []
        # A place frees on b: the first in line, waiting on a, gets it (its check runs on b), not b's own.
        await holders[1][1].bye()
        await holders[1][1].close()
        assert await eventually(lambda: admitted == ["first"], timeout=30)
        assert await eventually(lambda: cluster.store.session(first["id"]).status.value == "live", timeout=30)
        assert SharedState(cluster.store, "a").owner_of(first["id"]) == "b"
        await asyncio.sleep(4)
        assert admitted == ["first"]  # both full again: the second still waits
        # Then a place frees on a: the second, waiting on b, gets it.
        await holders[0][1].bye()
        await holders[0][1].close()
        assert await eventually(lambda: admitted == ["first", "second"], timeout=30)
        assert await eventually(lambda: cluster.store.session(second["id"]).status.value == "live", timeout=30)
        assert SharedState(cluster.store, "b").owner_of(second["id"]) == "a"
        async with browsers[0].get(f"{cluster.b.url}/healthz/details") as response:
            assert (await response.json())["capacity"]["waiting"] == 0
        # A bye on the instance the page talks to ends the check running on the other.
        await on_a.leave()
        assert await eventually(lambda: cluster.store.session(first["id"]).status.value != "live", timeout=30)
        for task in asking:
            await task
        await on_a.close()
        await on_b.bye()
        await on_b.close()
    finally:
        for browser in browsers:
            await browser.close()
        cluster.stop()
