"""The faults, one function each: it starts what the fault needs, injects it and returns the Tally.

- `kill`: SIGKILL of the instance carrying live checks. Each customer's check is live on instance a (its
  camera held on a neutral face) when a is killed; the customer then offers again to instance b (as the
  page does on reconnecting through the proxy) until b takes it, and finishes there. The sessions allow
  one attempt only, so an interrupted attempt counted against the customer would fail them.
- `kill_page`: the same kill with the customer in Debian's Chromium through haproxy (deploy/haproxy.cfg):
  how soon the page says the check was interrupted, what it offers, and the customer taking that offer
  until the check is decided on the surviving instance.
- `webhooks`: one merchant's receiver answers 503 for an hour of simulated time while another's works.
  Simulated: each round, the time to the dead merchant's next retry is taken off its events' clocks
  (created_at and next_attempt_at), as if that time had passed; the outbox's own back-off decides the
  next retry. Then the receiver comes back and every event must arrive.
- `database`: PostgreSQL restarted or paused (SIGSTOP) under live checks and API calls.
- `disk_full`: the SQLite default's data folder on a small tmpfs, filled.
- `clock`: one instance's wall clock stepped hours ahead, then behind.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .harness import BLINK_CLIP, FINAL, Receiver, Stalls, Tally, clean_up, eventually, fill, prepared_customer, settle, small_disk

# Every customer comes from 127.0.0.1: the per-address limits would otherwise be the fault.
OPEN_LIMITS = {"api_rate_per_minute": "100000", "page_rate_per_minute": "100000", "failures_per_window": "100000"}


def _media() -> tuple[list[Any], float, bytes]:
    from realname_tools.bench.customers import id_photo_from_clip
    from realname_tools.client import load_clip
    from tests.support.media import video

    frames, fps = load_clip(video(BLINK_CLIP), max_seconds=14)
    return frames, fps, id_photo_from_clip(frames, fps)


async def kill(postgres, folder: Path, customers: int = 1, timeout_s: float = 180.0) -> Tally:
    # One customer by default: a fresh instance admits one check until its cost is proven, so the shared
    # line would put a second customer's check on b, which the kill does not touch (it then runs on, held).
    import aiohttp

    from realname_tools.client import ClipTrack, HeldTrack, HostedFlowClient
    from server.api.auth import create_api_key
    from server.rtc.ice import use_loopback_candidates
    from tests.support.instances import Cluster

    use_loopback_candidates()
    tally = Tally("kill")
    frames, fps, photo = _media()
    cluster = Cluster(postgres.new_database(), folder, max_attempts="1", start_timeout_s="300", challenge_timeout_s="60", **OPEN_LIMITS)
    receiver = await Receiver().start()
    browsers = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(customers)]
    ids: list[str] = []
    try:
        await asyncio.to_thread(cluster.start)
        key, _secret = create_api_key(cluster.store, "Shop", sandbox=True)
        held = []
        for index, http in enumerate(browsers):
            session_id, on_a = await prepared_customer(http, cluster.a.url, key, photo, f"kill-{index}", receiver.url)
            run = await on_a.start_live(HeldTrack(frames, fps))
            if run.offer_error is not None:
                raise RuntimeError(f"instance a refused the first check: {run.offer_error}")
            ids.append(session_id)
            held.append(on_a)

        def all_live_on_a() -> bool:
            return all(cluster.store.session(s).status.value == "live" for s in ids)

        if not await eventually(all_live_on_a, timeout=60):
            raise RuntimeError("the checks did not go live on instance a")
        heartbeat_s = float(cluster.a.env["REALNAME_INSTANCE_HEARTBEAT_S"])
        killed_at = time.monotonic()
        cluster.a.kill()
        live_for: dict[str, float] = {}

        async def watch_live() -> None:
            while len(live_for) < len(ids) and time.monotonic() - killed_at < timeout_s:
                for s in ids:
                    if s not in live_for and (await asyncio.to_thread(cluster.store.session, s)).status.value != "live":
                        live_for[s] = round(time.monotonic() - killed_at, 1)
                await asyncio.sleep(0.2)

        async def continue_on_b(http) -> float | None:
            """Offer to b until it takes the check; the seconds from the kill to then."""
            on_b = HostedFlowClient(http, cluster.b.url)
            while time.monotonic() - killed_at < timeout_s:
                run = await on_b.start_live(ClipTrack(frames, fps))
                if run.offer_error is None:
                    admitted = time.monotonic() - killed_at
                    result = await on_b.wait_result(run, timeout=120)
                    await on_b.close()
                    if result is None:
                        tally.customer_errors["no_result"] += 1
                    return admitted
                tally.customer_errors[str(run.offer_error.get("code"))] += 1
                await asyncio.sleep(1.0)
            return None

        watcher = asyncio.create_task(watch_live())
        admitted = await asyncio.gather(*(continue_on_b(http) for http in browsers))
        await watcher
        for on_a in held:
            await on_a.close()
        await eventually(lambda: len(receiver.delivered_events()) >= len(ids), timeout=60)
        settle(tally, cluster.store, ids, receiver)
        tally.recover_s = max((a for a in admitted if a is not None), default=None)
        tally.recover_s = round(tally.recover_s, 1) if tally.recover_s is not None else None
        tally.notes.update(
            {
                "statuses": {s: cluster.store.session(s).status.value for s in ids},
                "attempts_used": {s: cluster.store.session(s).attempts for s in ids},
                "never_admitted_on_b": sum(a is None for a in admitted),
                "live_after_kill_s_max": max(live_for.values(), default=None),
                "owner_timeout_s": 4 * heartbeat_s,  # 3 missed beats, then the next round of the survivor
            }
        )
    finally:
        await clean_up(cluster, [receiver], browsers)
    return tally


# What the live page shows once the check stopped: the problem's text and which ways on are visible.
PAGE_STATE = """() => {
  const shown = (id) => { const e = document.getElementById(id); return !!e && !e.hidden && e.offsetParent !== null; };
  return {
    error: document.body.dataset.liveError || null,
    text: shown("problem") ? document.getElementById("problem-text").textContent.trim() : "",
    offers: ["retry", "start", "record", "handoff-offer"].filter(shown),
  };
}"""
BLINK_ID = "vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg"  # a frame of BLINK_CLIP, the ID photo


async def kill_page(postgres, folder: Path, timeout_s: float = 240.0) -> Tally:
    """A customer in Chromium through haproxy, the check live on the instance haproxy sent them to (the
    fake camera holds a still stretch of the clip, no blink, for 25 s first); that instance SIGKILLed.
    The customer reads the page's message and takes what it offers (the retry button, or the start button
    again) each time it shows, until the page shows a result; one attempt allowed, as in `kill`."""
    import aiohttp
    from playwright.async_api import async_playwright

    from e2e.support.browser import CHROMIUM, PHONE, chromium_args
    from e2e.support.flow import at, walk_to_live
    from e2e.support.y4m import clip_to_y4m
    from server.api.auth import create_api_key
    from tests.support.instances import Cluster, Proxy
    from tests.support.media import photo, video

    tally = Tally("kill-page")
    # The clip's first blink is at 0.5 s: its first 0.45 s played forward and back for 25 s, then the clip
    # from its start (no cut while a check runs, which would look like spliced footage). Chromium plays the
    # file from its start each time the page opens the camera: the check after the kill waits it out too.
    camera = clip_to_y4m(video(BLINK_CLIP), folder / "camera.y4m", hold_start_s=0.45, hold_repeats=30)
    cluster = Cluster(
        postgres.new_database(), folder, trusted_proxies='["127.0.0.1/32"]', max_attempts="1", start_timeout_s="300", challenge_timeout_s="150", **OPEN_LIMITS
    )
    proxy = Proxy(cluster)
    for instance in (cluster.a, cluster.b):
        instance.env["REALNAME_PUBLIC_URL"] = proxy.url
    receiver = await Receiver().start()
    store = cluster.store
    try:
        await asyncio.to_thread(cluster.start)
        await asyncio.to_thread(proxy.start)
        key, _secret = create_api_key(store, "Shop", sandbox=True)
        body = {"reference_id": "kill-page", "fixed_challenges": ["blink"], "callback_url": receiver.url}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{proxy.url}/api/v1/sessions", json=body, headers={"Authorization": f"Bearer {key}"}) as response:
                created = await response.json()
                if response.status != 201:
                    raise RuntimeError(f"creating a session answered {response.status}: {created}")
        session_id = created["id"]
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=chromium_args(camera.path))
            try:
                context = await browser.new_context(**PHONE)
                context.set_default_timeout(30_000)
                page = await context.new_page()
                await walk_to_live(page, created["url"], photo(BLINK_ID))
                await page.locator("#start").click()
                if not await eventually(lambda: store.session(session_id).status.value == "live", timeout=60):
                    raise RuntimeError(f"the check did not go live: {store.session(session_id).status.value}")
                owner = store._one("SELECT owner FROM sessions WHERE id = ?", (session_id,))["owner"]
                killed, survivor = (cluster.a, cluster.b) if owner == "a" else (cluster.b, cluster.a)
                attempts = {"live": store.session(session_id).attempts}
                killed_at = time.monotonic()
                killed.kill()
                live_for: list[float] = []
                live_again: list[float] = []

                def still_live_on_killed() -> bool:
                    row = store._one("SELECT status, owner FROM sessions WHERE id = ?", (session_id,))
                    return row["status"] == "live" and row["owner"] == owner

                def live_on_survivor() -> bool:
                    row = store._one("SELECT status, owner FROM sessions WHERE id = ?", (session_id,))
                    return row["status"] != "id_uploaded" and row["owner"] not in (owner, None)

                async def watch_live() -> None:
                    """When the check stopped being live on the killed instance, then when it went live again."""
                    for condition, times in ((lambda: not still_live_on_killed()), live_for), (live_on_survivor, live_again):
                        while time.monotonic() - killed_at < timeout_s:
                            if await asyncio.to_thread(condition):
                                times.append(round(time.monotonic() - killed_at, 1))
                                break
                            await asyncio.sleep(0.2)

                watcher = asyncio.create_task(watch_live())
                await page.wait_for_function("() => document.body.dataset.liveError !== undefined", polling=100, timeout=timeout_s * 1000)
                told_s = round(time.monotonic() - killed_at, 1)
                told = await page.evaluate(PAGE_STATE)
                taps, continued_at = await _take_the_offers(page, at("/verify/result"), killed_at, killed_at + timeout_s, tally)
                decided_s = round(time.monotonic() - continued_at, 1) if continued_at is not None else None
                result_s = round(time.monotonic() - killed_at, 1)
                shown_result = await page.locator("#result").get_attribute("data-status") if page.url and "/verify/result" in page.url else None
                sticky = [c["value"] for c in await context.cookies() if c["name"] == "rn_instance"]
            finally:
                await browser.close()
        await watcher
        await eventually(lambda: len(receiver.delivered_events()) >= 1, timeout=60)
        settle(tally, store, [session_id], receiver)
        final = store.session(session_id)
        attempts["final"] = final.attempts
        tally.recover_s = decided_s
        tally.notes.update(
            {
                "killed": owner,
                "kill_to_message_s": told_s,
                "message": told,
                "taps": taps,
                "continue_to_decision_s": decided_s,
                "kill_to_live_again_s": live_again[0] if live_again else None,
                "kill_to_result_s": result_s,
                "result_shown": shown_result,
                "statuses": {session_id: final.status.value},
                "decided_by": store._one("SELECT owner FROM sessions WHERE id = ?", (session_id,))["owner"],
                "sticky_after": sticky,
                "attempts": {**attempts, "max": final.max_attempts},
                "moves": [
                    f"{row['action']} {(row['detail'] or {}).get('reason') or ''}".strip()
                    for row in store.audit_for(session_id)
                    if row["action"].startswith("status.")
                ],
                "live_after_kill_s_max": max(live_for, default=None),
                "owner_timeout_s": 4 * float(survivor.env["REALNAME_INSTANCE_HEARTBEAT_S"]),
            }
        )
    finally:
        proxy.stop()
        await clean_up(cluster, [receiver])
    return tally


async def _take_the_offers(page, result_url, killed_at: float, deadline: float, tally: Tally) -> tuple[list[str], float | None]:
    """Tap what the page offers whenever it shows (the live page's retry, or its start button on a fresh
    live page; the result page's "try again" while attempts are left) until a final result shows: each tap
    as "<seconds after the kill> <page> <button>", and when the last one was made (the decided check
    started then)."""
    taps: list[str] = []
    last = None
    while time.monotonic() < deadline:
        try:
            if result_url.match(page.url):
                status = await page.locator("#result").get_attribute("data-status")
                if status in FINAL:
                    return taps, last
                offers = {"try-again": page.locator('form[action="/verify/retry"] button')}
            else:
                state = await page.evaluate(PAGE_STATE)
                offers = {offer: page.locator(f"#{offer}") for offer in ("retry", "start") if offer in state["offers"]}
                if state["error"]:
                    tally.customer_errors[state["error"]] += bool(offers)
            for name, button in offers.items():
                if await button.is_visible() and await button.is_enabled():
                    await button.click()
                    taps.append(f"{time.monotonic() - killed_at:.1f} {page.url.split('?')[0].rsplit('/', 1)[-1]} {name}")
                    last = time.monotonic()
                    break
        except Exception as error:  # the page navigating away under the script (a restart to /verify)
            if not any(word in str(error).lower() for word in ("navigat", "context was destroyed", "detached")):
                raise
        await asyncio.sleep(0.5)
    return taps, last


async def webhooks(postgres, folder: Path, events: int = 10, simulated_s: float = 3600.0, timeout_s: float = 120.0) -> Tally:
    from server.api.auth import create_api_key
    from tests.support.instances import Cluster

    tally = Tally("webhooks")
    dead, alive = await Receiver().start(), await Receiver().start()
    dead.down = True
    cluster = Cluster(postgres.new_database(), folder, webhook_retry_base_s="60", **OPEN_LIMITS)
    store = cluster.store
    try:
        await asyncio.to_thread(cluster.start)
        for name in ("Dead Shop", "Live Shop"):
            create_api_key(store, name, sandbox=True)
        keys = sorted(k.id for k in store.api_keys())  # the dead shop's first
        ids = {"dead": [], "alive": []}
        for index in range(events):
            for kind, key_id, receiver in (("dead", keys[0], dead), ("alive", keys[1], alive)):
                event_id = f"evt_{kind}_{index:03d}"
                body = json.dumps({"id": event_id, "type": "session.approved", "data": {"session": {"id": f"ses_{kind}_{index}"}}})
                store.add_webhook_event(event_id, f"ses_{kind}_{index}", key_id, "session.approved", receiver.url, body)
                ids[kind].append(event_id)
        started = time.monotonic()
        alive_done = await eventually(lambda: len(alive.delivered_events()) >= events, timeout=timeout_s)
        tally.notes["other_merchant_delivered_s"] = round(time.monotonic() - started, 1) if alive_done else None
        # An hour without the dead receiver: each round, the wait for its next retry passes at once.
        passed, delays = 0.0, []
        while passed < simulated_s:
            before = _attempts(store, ids["dead"])
            due = _next_due(store, ids["dead"])
            wait = max(0.0, due - time.time())
            delays.append(round(wait))
            _fast_forward(store, ids["dead"], wait)
            passed += wait
            if not await eventually(lambda b=before: _attempts(store, ids["dead"]) >= b + len(ids["dead"]), timeout=timeout_s):
                break
        tally.notes.update({"simulated_s": round(passed), "retry_waits_s": delays, "refused_while_dead": dead.refused})
        dead.down = False
        back = time.monotonic()
        wait = max(0.0, _next_due(store, ids["dead"]) - time.time())
        tally.notes["wait_for_the_next_retry_s"] = round(wait)  # simulated, as the back-off had grown to
        _fast_forward(store, ids["dead"], wait)
        await eventually(lambda: len(dead.delivered_events()) >= events, timeout=timeout_s)
        tally.recover_s = round(time.monotonic() - back, 1)
        all_ids = ids["dead"] + ids["alive"]
        delivered = dead.delivered_events() + alive.delivered_events()
        tally.sessions_started = tally.sessions_decided = 2 * events  # the events stand for decided sessions
        tally.webhooks_expected = len(all_ids)
        tally.webhooks_delivered = sum(1 for e in all_ids if delivered[e])
        tally.notes["delivered_more_than_once"] = sum(1 for e in all_ids if delivered[e] > 1)
        tally.notes["given_up"] = store._one("SELECT COUNT(*) AS n FROM webhook_events WHERE gave_up_at IS NOT NULL")["n"]
    finally:
        await clean_up(cluster, [dead, alive])
    return tally


def _marks(ids: list[str]) -> str:
    return ", ".join("?" for _ in ids)


def _attempts(store, ids: list[str]) -> int:
    return store._one(f"SELECT COALESCE(SUM(attempts), 0) AS n FROM webhook_events WHERE id IN ({_marks(ids)})", ids)["n"]


def _next_due(store, ids: list[str]) -> float:
    """When every one of these undelivered events is due again (their retries are jittered)."""
    row = store._one(f"SELECT MAX(next_attempt_at) AS due FROM webhook_events WHERE delivered_at IS NULL AND id IN ({_marks(ids)})", ids)
    return row["due"] if row and row["due"] is not None else time.time()


def _fast_forward(store, ids: list[str], seconds: float) -> None:
    """As if `seconds` had passed for these events: their clocks are moved back by that much."""
    store._write(
        f"UPDATE webhook_events SET created_at = created_at - ?, next_attempt_at = next_attempt_at - ? WHERE id IN ({_marks(ids)})",
        [seconds, seconds, *ids],
    )


async def database(postgres, folder: Path, mode: str = "restart", customers: int = 2, down_s: float = 8.0, timeout_s: float = 180.0) -> Tally:
    """PostgreSQL restarted (`restart`: down at once, then started again) or paused (`pause`: SIGSTOP, then
    SIGCONT) while checks are live on both instances and the merchant API is being called: the API's
    answers meanwhile, and whether the checks that ended while it was down are stored once it is back."""
    import aiohttp

    from server.api.auth import create_api_key
    from server.rtc.ice import use_loopback_candidates
    from tests.support.instances import Cluster

    use_loopback_candidates()
    tally = Tally(f"database-{mode}")
    frames, fps, photo = _media()
    cluster = Cluster(postgres.new_database(), folder, start_timeout_s="300", challenge_timeout_s="60", **OPEN_LIMITS)
    receiver = await Receiver().start()
    browsers = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(customers)]
    answers: list[dict[str, Any]] = []
    ids: list[str] = []
    try:
        await asyncio.to_thread(cluster.start)
        key, _secret = create_api_key(cluster.store, "Shop", sandbox=True)
        instances = (cluster.a, cluster.b)
        held = await _held_checks(cluster.store, browsers, instances, key, (frames, fps, photo), "db", receiver.url)
        ids.extend(held.ids)
        runs, tracks, clients = held.runs, held.tracks, held.clients
        stop = asyncio.Event()

        async def call_api(http) -> None:
            """The merchant reads a session from each instance, one request after another."""
            while not stop.is_set():
                for instance in instances:
                    sent = time.monotonic()
                    try:
                        async with http.get(f"{instance.url}/api/v1/sessions/{ids[0]}", headers={"Authorization": f"Bearer {key}"}) as response:
                            text = await response.text()
                            answers.append(
                                {
                                    "at": sent,
                                    "status": response.status,
                                    "retry_after": response.headers.get("Retry-After"),
                                    "problem": response.content_type == "application/problem+json" or response.status < 400,
                                    "trace": "Traceback" in text,
                                    "s": time.monotonic() - sent,
                                }
                            )
                    except (aiohttp.ClientError, TimeoutError) as error:
                        answers.append({"at": sent, "status": type(error).__name__, "s": time.monotonic() - sent})
                await asyncio.sleep(0.3)

        stalls = Stalls([i.url for i in instances]).start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as api:
            caller = asyncio.create_task(call_api(api))
            await asyncio.sleep(2.0)
            down_at = time.monotonic()
            await asyncio.to_thread(postgres.halt if mode == "restart" else postgres.pause)
            for track in tracks:  # the customers blink now: their checks end while the database is down
                track.released.set()
            await asyncio.sleep(down_s)
            await asyncio.to_thread(postgres.start if mode == "restart" else postgres.resume)
            back_at = time.monotonic()
            results = await asyncio.gather(*(client.wait_result(run, timeout=120) for client, run in zip(clients, runs, strict=True)))
            for client in clients:
                await client.close()

            def all_ok_again() -> bool:
                recent = [a for a in answers if a["at"] > back_at]
                return all(any(a["status"] == 200 for a in recent[i::2]) for i in range(2)) if len(recent) >= 2 else False

            await eventually(all_ok_again, timeout=timeout_s)
            tally.recover_s = round(max((a["at"] + a["s"] for a in answers if a["status"] != 200), default=back_at) - back_at, 1)
            await eventually(lambda: all(cluster.store.session(s).status.value in ("approved", "rejected", "review", "failed") for s in ids), timeout=timeout_s)
            await eventually(lambda: len(receiver.delivered_events()) >= len(ids), timeout=timeout_s)
            stop.set()
            await caller
        tally.notes["event_loop_stalled_s_max"] = await stalls.stop()
        tally.customer_errors["no_result"] = sum(r is None for r in results)
        settle(tally, cluster.store, ids, receiver)
        during = [a for a in answers if down_at <= a["at"] <= back_at]
        statuses = Counter(str(a["status"]) for a in answers)
        tally.notes.update(
            {
                "statuses": {s: cluster.store.session(s).status.value for s in ids},
                "failure_reasons": {s: cluster.store.session(s).failure_reason for s in ids},
                "results_told": [r and r.get("status") for r in results],
                "api_answers": dict(statuses),
                "api_answers_while_down": dict(Counter(str(a["status"]) for a in during)),
                "api_500": sum(1 for a in answers if a["status"] == 500),
                "api_503_without_retry_after": sum(1 for a in answers if a["status"] == 503 and not a.get("retry_after")),
                "api_traces": sum(1 for a in answers if a.get("trace")),
                "api_slowest_s": round(max((a["s"] for a in answers), default=0.0), 1),
                "down_s": round(back_at - down_at, 1),
            }
        )
    finally:
        await clean_up(cluster, [receiver], browsers)
    return tally


async def disk_full(folder: Path, size_mb: int = 64, full_s: float = 10.0, timeout_s: float = 180.0) -> Tally:
    """The SQLite default with its data folder on a small disk of its own, filled while one customer's check
    is live and another is about to send their ID photo: what the customers and the merchant's API are
    told while it is full, whether the check that ended meanwhile is stored once space is freed, whether the
    other customer can go on, and `PRAGMA integrity_check` on the database file after."""
    import base64
    import os
    import sqlite3

    import aiohttp

    from realname_tools.client import ClipTrack, HeldTrack
    from server.api.auth import create_api_key
    from server.receipts.keys import keyring_text, new_key
    from server.rtc.ice import use_loopback_candidates
    from server.storage.crypto import Cipher
    from server.storage.store import Store
    from tests.support.instances import Instance, environment, free_port

    use_loopback_candidates()
    tally = Tally("disk-full")
    frames, fps, photo = _media()
    evidence_key = os.urandom(32)
    receiver = await Receiver().start()
    browsers = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(2)]
    answers: Counter = Counter()
    with small_disk(folder / "a", size_mb) as data:
        settings = dict(
            evidence_key=base64.b64encode(evidence_key).decode(), receipt_keys=keyring_text([new_key()]), start_timeout_s="300", challenge_timeout_s="60"
        )
        instance = Instance(environment(data, free_port(), "", **settings, **OPEN_LIMITS))
        store = None
        try:
            await asyncio.to_thread(instance.start)
            store = Store(data / "realname.sqlite3", Cipher(evidence_key))  # the operator's view
            key, _secret = create_api_key(store, "Shop", sandbox=True)
            stalls = Stalls([instance.url]).start()
            first, on_first = await prepared_customer(browsers[0], instance.url, key, photo, "full-0", receiver.url)
            track = HeldTrack(frames, fps)
            run = await on_first.start_live(track)
            if run.offer_error is not None:
                raise RuntimeError(f"the check was refused: {run.offer_error}")
            if not await eventually(lambda: store.session(first).status.value == "live", timeout=60):
                raise RuntimeError("the check did not go live")
            second, on_second = await _consented_customer(browsers[1], instance.url, key, "full-1", receiver.url)
            ids = [first, second]

            filler = await asyncio.to_thread(fill, data)
            full_at = time.monotonic()
            status, page = await on_second.upload_document(photo)  # the evidence write
            answers[f"upload {status}"] += 1
            tally.customer_errors[_page_code(page) if status >= 400 else "none"] += 1
            tally.notes["page_trace"] = "Traceback" in page
            track.released.set()  # the first customer blinks: their check ends while the disk is full
            api = await _api_while(instance.url, key, ids[0], full_s)
            answers.update(api["answers"])
            tally.notes["status_while_full"] = {s: (await asyncio.to_thread(store.session, s)).status.value for s in ids}
            tally.notes["full_s"] = round(time.monotonic() - full_at, 1)
            filler.unlink()
            freed_at = time.monotonic()

            result = await on_first.wait_result(run, timeout=timeout_s)
            await on_first.close()
            await eventually(lambda: store.session(first).status.value in FINAL, timeout=timeout_s)
            tally.recover_s = round(time.monotonic() - freed_at, 1)
            status, page = await on_second.upload_document(photo)  # again, now that there is room
            answers[f"upload again {status}"] += 1
            second_run = await on_second.start_live(ClipTrack(frames, fps))
            second_result = None if second_run.offer_error else await on_second.wait_result(second_run, timeout=120)
            await on_second.close()
            await eventually(lambda: len(receiver.delivered_events()) >= 2, timeout=timeout_s)
            tally.notes["event_loop_stalled_s_max"] = await stalls.stop()
            settle(tally, store, ids, receiver)
            tally.notes.update(
                {
                    "statuses": {s: store.session(s).status.value for s in ids},
                    "results_told": [r and r.get("status") for r in (result, second_result)],
                    "answers": dict(answers),
                    "api_500": api["500"],
                    "api_traces": api["traces"],
                    "api_without_retry_after": api["without_retry_after"],
                }
            )
        finally:
            if store is not None:
                store.close()
            await clean_up(instance, [receiver], browsers)
        with sqlite3.connect(data / "realname.sqlite3") as check:
            tally.notes["integrity_check"] = check.execute("PRAGMA integrity_check").fetchone()[0]
    return tally


@dataclass
class HeldChecks:
    ids: list[str] = field(default_factory=list)
    runs: list[Any] = field(default_factory=list)
    tracks: list[Any] = field(default_factory=list)
    clients: list[Any] = field(default_factory=list)


async def _held_checks(store, browsers: list, instances: tuple, key: str, media: tuple[list[Any], float, bytes], label: str, callback_url: str) -> HeldChecks:
    """One customer per browser, on the instances in turn, each holding a neutral face (HeldTrack) until
    told to blink; returned once every check is live."""
    from realname_tools.client import HeldTrack

    frames, fps, photo = media
    held = HeldChecks()
    for index, http in enumerate(browsers):
        session_id, client = await prepared_customer(http, instances[index % len(instances)].url, key, photo, f"{label}-{index}", callback_url)
        track = HeldTrack(frames, fps)
        run = await client.start_live(track)
        if run.offer_error is not None:
            raise RuntimeError(f"the check of customer {index} was refused: {run.offer_error}")
        held.ids.append(session_id)
        held.runs.append(run)
        held.tracks.append(track)
        held.clients.append(client)
    if not await eventually(lambda: all(store.session(s).status.value == "live" for s in held.ids), timeout=60):
        raise RuntimeError("the checks did not go live")
    return held


async def _consented_customer(http, base_url: str, api_key: str, reference: str, callback_url: str):
    """A session created through the API whose customer consented and is about to send the ID photo."""
    from realname_tools.client import HostedFlowClient

    body = {"reference_id": reference, "fixed_challenges": ["blink"], "callback_url": callback_url}
    async with http.post(f"{base_url}/api/v1/sessions", json=body, headers={"Authorization": f"Bearer {api_key}"}) as response:
        created = await response.json()
    customer = HostedFlowClient(http, base_url)
    if await customer.open(created["url"]) != 303 or await customer.consent() != 303:
        raise RuntimeError("the hosted pages refused the customer")
    return created["id"], customer


def _page_code(page: str) -> str:
    """The error code whose text (`error.<code>`, English) a page shows, or `page` when none."""
    import html

    from server.web import i18n

    texts = json.loads((Path(i18n.__file__).parent / "locales" / "en.json").read_text(encoding="utf-8"))
    shown = html.unescape(page)
    return next((key.removeprefix("error.") for key, text in texts.items() if key.startswith("error.") and text in shown), "page")


async def _api_while(base_url: str, api_key: str, session_id: str, seconds: float) -> dict[str, Any]:
    """The merchant reading a session and creating one, over and over for `seconds`: answers by status."""
    import aiohttp

    found: dict[str, Any] = {"answers": Counter(), "500": 0, "traces": 0, "without_retry_after": 0}
    headers = {"Authorization": f"Bearer {api_key}"}
    until = time.monotonic() + seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        while time.monotonic() < until:
            for method, path, body in (("GET", f"/api/v1/sessions/{session_id}", None), ("POST", "/api/v1/sessions", {"reference_id": "while-full"})):
                async with http.request(method, base_url + path, json=body, headers=headers) as response:
                    text = await response.text()
                    found["answers"][f"{method} {response.status}"] += 1
                    found["500"] += response.status == 500
                    found["traces"] += "Traceback" in text
                    found["without_retry_after"] += response.status in (503, 507) and "Retry-After" not in response.headers
            await asyncio.sleep(0.5)
    return found


async def clock(postgres, folder: Path, step_s: float = 7200.0, timeout_s: float = 180.0) -> Tally:
    """Instance a's wall clock stepped `step_s` ahead, then as far behind (its monotonic clock untouched, as
    an NTP step or a resumed VM does), while a check is live on each instance and sessions created on b wait
    for their customers (30 min to live): whether a check is ended or taken by the other instance, a waiting
    session expired, and how far off the webhooks' signed times are from the receiver's clock (receivers
    refuse beyond 5 min)."""
    import os

    import aiohttp

    from server.api.auth import create_api_key
    from server.rtc.ice import use_loopback_candidates
    from server.storage.shared import MISSED_BEATS
    from tests.support.instances import Cluster

    use_loopback_candidates()
    tally = Tally("clock")
    frames, fps, photo = _media()
    cluster = Cluster(postgres.new_database(), folder, start_timeout_s="600", challenge_timeout_s="120", **OPEN_LIMITS)
    step_file = folder / "clock-step"
    step_file.write_text("0")
    shim = Path(__file__).parent / "stepped_clock"
    cluster.a.env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(shim), cluster.a.env.get("PYTHONPATH")])), CHAOS_CLOCK_STEP_FILE=str(step_file))
    receiver = await Receiver().start()
    browsers = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(2)]
    try:
        await asyncio.to_thread(cluster.start)
        key, _secret = create_api_key(cluster.store, "Shop", sandbox=True)
        instances = (cluster.a, cluster.b)
        held = await _held_checks(cluster.store, browsers, instances, key, (frames, fps, photo), "clock", receiver.url)
        live, runs, tracks, clients = held.ids, held.runs, held.tracks, held.clients
        waiting = [await _created(cluster.b.url, key, f"clock-waiting-{i}", ttl_s=1800) for i in range(2)]
        hold_s = 4 * MISSED_BEATS * float(cluster.a.env["REALNAME_INSTANCE_HEARTBEAT_S"])  # long enough to look gone
        seen: dict[str, Counter] = {}
        ended: set[str] = set()  # live checks seen not live while the clock was stepped
        for step in (step_s, -step_s):
            step_file.write_text(str(step))
            statuses: Counter = Counter()
            until = time.monotonic() + hold_s
            while time.monotonic() < until:
                for s in live + waiting:
                    status = (await asyncio.to_thread(cluster.store.session, s)).status.value
                    statuses[f"{'live' if s in live else 'waiting'} {status}"] += 1
                    if s in live and status != "live":
                        ended.add(s)
                await asyncio.sleep(1.0)
            seen[f"{step:+.0f} s"] = statuses
        for track in tracks:  # the customers blink now, a's clock still behind
            track.released.set()
        results = await asyncio.gather(*(client.wait_result(run, timeout=timeout_s) for client, run in zip(clients, runs, strict=True)))
        for client in clients:
            await client.close()
        await eventually(lambda: all(cluster.store.session(s).status.value in FINAL for s in live), timeout=timeout_s)
        await eventually(lambda: len(receiver.delivered_events()) >= len(live), timeout=timeout_s)
        step_file.write_text("0")
        settle(tally, cluster.store, live + waiting, receiver)
        final = {s: cluster.store.session(s).status.value for s in live + waiting}
        tally.customer_errors["no_result"] = sum(r is None for r in results)
        tally.notes.update(
            {
                "statuses_while_stepped": {step: dict(counts) for step, counts in seen.items()},
                "statuses": final,
                "results_told": [r and r.get("status") for r in results],
                "live_checks_ended_while_stepped": len(ended),
                "waiting_sessions_expired": sum(final[s] == "expired" for s in waiting),
                "signature_skew_s_max": round(max(receiver.skews_s, default=0.0)),
                "signatures_a_receiver_refuses": sum(skew > 300 for skew in receiver.skews_s),
            }
        )
    finally:
        await clean_up(cluster, [receiver], browsers)
    return tally


async def _created(base_url: str, api_key: str, reference: str, **body: Any) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base_url}/api/v1/sessions", json={"reference_id": reference, **body}, headers={"Authorization": f"Bearer {api_key}"}
        ) as response:
            created = await response.json()
            if response.status != 201:
                raise RuntimeError(f"creating a session answered {response.status}: {created}")
    return created["id"]
