"""Attacks on the live check, each against the real server (real SQLite file, real aiortc peers on
127.0.0.1): racing offers (issue 10 item 1), leaving and failing to lock others out (10), link previews
(11), offers that list addresses to probe (12), malformed offers (13), hostile data-channel messages (14).

Each shows the attack now fails safely: a clear 4xx, never a 5xx or a traceback, nothing left running,
nothing lost for other customers. Outcomes only: no durations or rates are asserted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re

import aiohttp
import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

import server.flow.attempts as attempts_module
from realname_tools.client import ClipTrack, HostedFlowClient, load_clip
from server.ratelimit import FailureLimiter
from server.rtc.offer import MAX_CANDIDATES, CandidatePolicy, check_offer
from server.sessions import Status
from server.web.cookies import BROWSER_COOKIE
from tests.support.media import photo, video
from tests.support.waiting import eventually
from tests.test_live_flow import BLINK_CLIP, BLINK_ID, new_session, ready_for_live, session_json

LIVE_CONFIG = re.compile(r'<script type="application/json" id="live-config">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def blink_clip():
    return load_clip(video(BLINK_CLIP))


def blank_frames(count: int = 30) -> tuple[list, float]:
    """A camera pointed at a grey wall: no face at all."""
    grey = np.full((480, 640, 3), 128, dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(grey, format="bgr24").reformat(format="yuv420p")
    return [frame] * count, 30.0


async def live_config(http: aiohttp.ClientSession, server) -> dict:
    async with http.get(server.make_url("/verify/live")) as response:
        page = await response.text()
    found = LIVE_CONFIG.search(page)
    assert found is not None, f"no live page at {response.url}"
    return json.loads(found.group(1))


async def peer_offer(track=None) -> tuple[RTCPeerConnection, object]:
    """A real aiortc peer as the page makes it: the camera track (sendonly) and the control channel."""
    pc = RTCPeerConnection()
    if track is not None:
        pc.addTransceiver(track, direction="sendonly")
    channel = pc.createDataChannel("control")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, channel


async def post_offer(http, server, config: dict, body: object) -> tuple[int, dict | None, str]:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {config["csrfHeader"]: config["csrf"], "Content-Type": "application/json"}
    async with http.post(server.make_url(config["offerUrl"]), data=data, headers=headers) as response:
        text = await response.text()
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        return response.status, parsed, text


def offer_body(pc: RTCPeerConnection) -> dict:
    return {"sdp": pc.localDescription.sdp, "type": "offer", "camera_label": "Integrated Camera"}


async def close_all(pcs) -> None:
    await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)


class Peak:
    """The most live checks the server held at any moment of the event loop while it runs."""

    def __init__(self, services) -> None:
        self.services, self.value, self._task = services, 0, None

    async def _watch(self) -> None:
        while True:
            self.value = max(self.value, len(self.services.attempts.live))
            await asyncio.sleep(0)

    def __enter__(self) -> Peak:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *exc) -> None:
        self.value = max(self.value, len(self.services.attempts.live))
        self._task.cancel()


# -- item 1: concurrent offers --------------------------------------------------------------------


async def test_concurrent_offers_on_one_session_start_exactly_one_check(http, server, services, sandbox_key, blink_clip):
    created, _customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"])
    config = await live_config(http, server)
    pcs = [pc for pc, _ in await asyncio.gather(*(peer_offer(ClipTrack(*blink_clip)) for _ in range(30)))]
    try:
        with Peak(services) as peak:
            answers = await asyncio.gather(*(post_offer(http, server, config, offer_body(pc)) for pc in pcs))
        statuses = [status for status, _, _ in answers]
        assert statuses.count(200) == 1, statuses
        for status, body, text in answers:
            assert status < 500 and "Traceback" not in text
            if status != 200:
                assert status == 409 and body["error"]["code"] in ("already_live", "wrong_state"), (status, text)
        assert peak.value == 1 and list(services.attempts.live.attempts())[0].session_id == created["id"]
        assert len(services.attempts.connections) == 1  # the losers built nothing
        winner, answer = pcs[statuses.index(200)], answers[statuses.index(200)][1]
        await winner.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        assert await eventually(lambda: winner.connectionState == "connected", timeout=20)
        session = services.store.session(created["id"])
        assert session.status == Status.LIVE and session.attempts == 1
        started = [e for e in services.store.audit_for(created["id"]) if e["action"] == "live.started"]
        assert len(started) == 1
    finally:
        await close_all(pcs)
    assert await eventually(lambda: not services.attempts.live and not services.attempts.connections, timeout=20)


async def test_concurrent_offers_from_many_sessions_never_pass_the_server_cap(server, services, sandbox_key, blink_clip):
    services.attempts.settings = services.attempts.settings.replace(max_live_sessions=2)
    browsers = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(5)]
    pcs: list[RTCPeerConnection] = []
    try:
        configs = []
        for browser in browsers:
            await ready_for_live(browser, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"])
            configs.append(await live_config(browser, server))
        pcs = [pc for pc, _ in await asyncio.gather(*(peer_offer(ClipTrack(*blink_clip)) for _ in browsers))]
        with Peak(services) as peak:
            answers = await asyncio.gather(*(post_offer(b, server, c, offer_body(pc)) for b, c, pc in zip(browsers, configs, pcs, strict=True)))
        statuses = [status for status, _, _ in answers]
        # At most the cap (the measured capacity of a loaded machine may admit fewer), the rest "busy".
        admitted = statuses.count(200)
        assert 1 <= admitted <= 2 and statuses.count(503) == 5 - admitted, statuses
        assert all(body["error"]["code"] == "busy" for status, body, _ in answers if status != 200), answers
        assert peak.value <= 2 and len(services.attempts.live) == admitted
        async with browsers[0].get(server.make_url("/healthz/details")) as response:
            assert (await response.json())["live_checks"] == admitted
    finally:
        await close_all(pcs)
        await asyncio.gather(*(b.close() for b in browsers))
    assert await eventually(lambda: not services.attempts.live, timeout=20)


async def test_only_the_registered_attempt_decides_the_session(http, server, services, sandbox_key, blink_clip):
    """Six offers streaming the genuine clip and a seventh streaming no face, all at once: whichever
    offer won is the one check that runs, and the session ends as that stream deserves."""
    services.attempts.settings = services.attempts.settings.replace(start_timeout_s=8.0)
    created, _customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["blink"])
    config = await live_config(http, server)
    tracks = [ClipTrack(*blink_clip) for _ in range(6)]
    tracks.insert(3, ClipTrack(*blank_frames()))
    peers = await asyncio.gather(*(peer_offer(track) for track in tracks))
    pcs = [pc for pc, _ in peers]
    results: dict[int, list] = {i: [] for i in range(len(peers))}
    for i, (_, channel) in enumerate(peers):
        channel.on("message", lambda message, i=i: results[i].append(json.loads(message)))
    try:
        answers = await asyncio.gather(*(post_offer(http, server, config, offer_body(pc)) for pc in pcs))
        statuses = [status for status, _, _ in answers]
        assert statuses.count(200) == 1 and all(s == 409 for s in statuses if s != 200), statuses
        won = statuses.index(200)
        genuine = won != 3
        await pcs[won].setRemoteDescription(RTCSessionDescription(sdp=answers[won][1]["sdp"], type="answer"))

        def decided() -> bool:
            return any(m.get("type") == "result" for m in results[won])

        assert await eventually(decided, timeout=60)
        session = services.store.session(created["id"])
        if genuine:
            assert session.status == Status.APPROVED, session.failure_reason
        else:
            assert session.status == Status.ID_UPLOADED and session.failure_reason in ("no_face", "not_ready")
        # The losers never got an answer, never connected, never heard a result.
        for i, pc in enumerate(pcs):
            if i != won:
                assert pc.connectionState != "connected" and not results[i]
        started = [e for e in services.store.audit_for(created["id"]) if e["action"] == "live.started"]
        assert len(started) == 1 and session.attempts == 1
    finally:
        await close_all(pcs)
    assert await eventually(lambda: not services.attempts.live and not services.attempts.connections, timeout=20)


async def test_offers_racing_a_running_check_cannot_decide_it(http, server, services, sandbox_key, blink_clip):
    """The issue's attack, made deterministic: the registered check streams no face; six offers streaming
    the genuine clip arrive at once while it runs. They are refused, and the session is not approved."""
    services.attempts.settings = services.attempts.settings.replace(start_timeout_s=3.0)
    created, _customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["blink"])
    config = await live_config(http, server)
    registered, channel = await peer_offer(ClipTrack(*blank_frames()))
    results: list[dict] = []
    channel.on("message", lambda message: results.append(json.loads(message)))
    racers = [pc for pc, _ in await asyncio.gather(*(peer_offer(ClipTrack(*blink_clip)) for _ in range(6)))]
    try:
        status, answer, text = await post_offer(http, server, config, offer_body(registered))
        assert status == 200, text
        await registered.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        answers = await asyncio.gather(*(post_offer(http, server, config, offer_body(pc)) for pc in racers))
        assert [s for s, _, _ in answers] == [409] * 6, answers
        assert all(body["error"]["code"] in ("already_live", "wrong_state") for _, body, _ in answers)
        assert len(services.attempts.connections) == 1  # nothing built for the racers
        assert await eventually(lambda: any(m.get("type") == "result" for m in results), timeout=60)
        session = services.store.session(created["id"])
        assert session.status == Status.ID_UPLOADED and session.failure_reason in ("no_face", "not_ready")
        assert session.attempts == 1 and session.match is None  # no face was ever compared
        assert all(pc.connectionState != "connected" for pc in racers)
    finally:
        await close_all([registered, *racers])
    assert await eventually(lambda: not services.attempts.live and not services.attempts.connections, timeout=20)


# -- item 10: the failure limiter -----------------------------------------------------------------


def small_limits(services, failures: int) -> None:
    services.attempts.failures = FailureLimiter(failures, 600.0, 60.0)
    services.lifecycle.settings = services.lifecycle.settings.replace(max_attempts=20)


async def live_then_bye(customer: HostedFlowClient, services, session_id: str, track) -> None:
    run = await customer.start_live(track)
    assert run.offer_error is None, run.offer_error
    assert await eventually(lambda: bool(run.messages), timeout=20)
    await customer.bye()
    assert await eventually(lambda: session_id not in services.attempts.live, timeout=20)
    await customer.close()


async def test_leaving_ten_times_is_not_failing(http, server, services, sandbox_key, blink_clip):
    small_limits(services, failures=3)
    created, customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"])
    for _ in range(10):
        await live_then_bye(customer, services, created["id"], ClipTrack(*blink_clip))
    session = services.store.session(created["id"])
    assert session.status == Status.ID_UPLOADED and session.failure_reason == "abandoned" and session.attempts == 10
    run = await customer.start_live(ClipTrack(*blink_clip))  # not paused
    assert run.offer_error is None, run.offer_error
    await customer.bye()
    await customer.close()
    assert await eventually(lambda: not services.attempts.live, timeout=20)


async def fail_once(customer: HostedFlowClient) -> None:
    run = await customer.start_live(ClipTrack(*blank_frames()))
    assert run.offer_error is None, run.offer_error
    result = await customer.wait_result(run, timeout=30)
    await customer.close()
    assert result is not None and result["status"] == "id_uploaded"


async def test_a_customer_who_fails_is_paused_alone(http, server, services, sandbox_key, blink_clip):
    small_limits(services, failures=2)
    services.attempts.settings = services.attempts.settings.replace(start_timeout_s=1.0)
    created, customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"])
    for _ in range(2):
        await fail_once(customer)
    assert services.store.session(created["id"]).failure_reason in ("no_face", "not_ready")
    paused = await customer.start_live(ClipTrack(*blink_clip))
    assert paused.offer_error["status"] == 429 and paused.offer_error["code"] == "too_many_failures"
    # The same browser on a new link of the same merchant is the same customer: still paused.
    again, same_browser = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"])
    refused = await same_browser.start_live(ClipTrack(*blink_clip))
    assert refused.offer_error["code"] == "too_many_failures"
    # Another customer behind the same address (127.0.0.1, another browser) is not paused.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other_browser:
        other, neighbour = await ready_for_live(other_browser, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"])
        await live_then_bye(neighbour, services, other["id"], ClipTrack(*blink_clip))
    assert services.store.session(other["id"]).failure_reason == "abandoned"
    assert await eventually(lambda: not services.attempts.live, timeout=20)


# -- item 11: link previews -----------------------------------------------------------------------


async def test_link_previews_and_head_requests_do_not_use_the_link(http, server, services, sandbox_key):
    created = await new_session(http, server, sandbox_key)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), headers={"User-Agent": "Slackbot-LinkExpanding 1.0"}) as robot:
        for method in ("GET", "HEAD", "GET"):
            async with robot.request(method, created["url"], allow_redirects=False) as response:
                assert response.status == 200, (method, response.status)
    assert services.store.session(created["id"]).token_used_at is None
    customer = HostedFlowClient(http, str(server.make_url("/")))
    assert await customer.open(created["url"]) == 303
    assert await customer.consent() == 303
    assert services.store.session(created["id"]).status == Status.CONSENTED
    # Now the link is the customer's: a later robot sees "used" and gets nothing of the session.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as robot:
        async with robot.get(created["url"], allow_redirects=False) as response:
            assert response.status == 410
        async with robot.post(created["url"], allow_redirects=False) as response:
            assert response.status == 410 and BROWSER_COOKIE not in response.cookies


# -- item 12: candidates the server would probe ---------------------------------------------------

FORBIDDEN = ["169.254.169.254", "10.0.0.1", "127.0.0.2", "0.0.0.0", "224.0.0.1", "192.168.1.1", "172.16.0.1", "::1", "fe80::1", "100.64.0.1", "255.255.255.255"]

LOOPBACK = {"127.0.0.2", "::1"}


def with_candidates(sdp: str, hosts: list[str], public: int) -> str:
    """The offer with candidates for `hosts` and `public` documentation-free public addresses added to its video section."""
    lines = [f"a=candidate:{i} 1 udp 2130706431 {host} {1000 + i} typ host" for i, host in enumerate(hosts)]
    lines += [f"a=candidate:p{i} 1 udp 2130706431 8.8.{i // 250}.{i % 250 + 1} {2000 + i} typ host" for i in range(public)]
    head, video_start, rest = sdp.partition("m=video")
    section_end = rest.find("\r\nm=")
    section_end = len(rest) if section_end < 0 else section_end
    return head + video_start + rest[:section_end] + "\r\n" + "\r\n".join(lines) + rest[section_end:]


def candidate_hosts(sdp: str) -> list[str]:
    return [line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")]


async def test_check_offer_keeps_a_few_public_candidates_only(blink_clip):
    pc, _ = await peer_offer(ClipTrack(*blink_clip))
    try:
        sdp = with_candidates(pc.localDescription.sdp, FORBIDDEN * 10, public=440)
        assert len(candidate_hosts(sdp)) > 500
        kept = candidate_hosts(check_offer(sdp, "offer", CandidatePolicy(allow_loopback=False)))
        # Per section at most MAX_CANDIDATES (the video and the data channel section): never a special address.
        assert 0 < len(kept) <= 2 * MAX_CANDIDATES
        assert not set(kept) & set(FORBIDDEN) and "127.0.0.1" not in kept
        with_loopback = candidate_hosts(check_offer(sdp, "offer", CandidatePolicy(allow_loopback=True)))
        assert len(with_loopback) <= 2 * MAX_CANDIDATES
        assert not set(with_loopback) & (set(FORBIDDEN) - LOOPBACK)
    finally:
        await pc.close()
    # Candidates the ICE agent cannot use (a port past 65535 made its sendto fail in the event loop).
    broken = [
        "a=candidate:1 1 udp 2130706431 8.8.8.8 99999 typ host",
        "a=candidate:2 1 udp 2130706431 8.8.8.8 0 typ host",
        "a=candidate:3 1 tcp 2130706431 8.8.8.8 9 typ host tcptype active",
        "a=candidate:4 1 udp 2130706431 8.8.8.8 5000 typ zzz",
        "a=candidate:5 x udp 2130706431 8.8.8.8 5000 typ host",
        "a=candidate:6 1 udp",
    ]
    sdp = pc.localDescription.sdp.replace("a=end-of-candidates", "\r\n".join(broken) + "\r\na=end-of-candidates", 1)
    assert candidate_hosts(check_offer(sdp, "offer", CandidatePolicy())) == []
    policy = CandidatePolicy()
    assert not any(policy.allows(host) for host in FORBIDDEN)
    assert not policy.allows("::ffff:169.254.169.254") and not policy.allows("::ffff:10.0.0.1")
    assert policy.allows("8.8.8.8") and policy.allows("2a00:1450::1") and policy.allows("3f0c2a4e-1b2c-4d5e-8f90-123456789abc.local")
    assert not policy.allows("metadata.google.internal") and not policy.allows("localhost")


async def test_an_offer_full_of_candidates_is_refused_or_trimmed(http, server, services, sandbox_key, blink_clip):
    created, _customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"])
    config = await live_config(http, server)
    pc, _ = await peer_offer(ClipTrack(*blink_clip))
    try:
        sdp = with_candidates(pc.localDescription.sdp, FORBIDDEN * 5, public=1450)
        assert 85_000 < len(sdp) < 100_000
        status, body, text = await post_offer(http, server, config, {"sdp": sdp, "type": "offer"})
        assert status < 500 and "Traceback" not in text, text
        if status == 200:
            (attempt,) = services.attempts.live.attempts()
            remote = _remote_candidates(attempt.connection.pc)
            # The test server runs in loopback mode (ice_loopback): only loopback addresses may stay.
            assert len(remote) <= 2 * MAX_CANDIDATES and not {c.host for c in remote} & (set(FORBIDDEN) - LOOPBACK)
        else:
            assert 400 <= status < 500 and body["error"]["code"] == "bad_offer"
    finally:
        await pc.close()
    assert await eventually(lambda: not services.attempts.live and not services.attempts.connections, timeout=30)
    assert services.store.session(created["id"]).status != Status.LIVE


def _remote_candidates(pc: RTCPeerConnection) -> list:
    """The candidates the server's ICE agent would send checks to."""
    found = []
    for transceiver in pc.getTransceivers():
        ice = transceiver.receiver.transport.transport
        found += ice._connection.remote_candidates
    if pc.sctp is not None:
        found += pc.sctp.transport.transport._connection.remote_candidates
    return list({(c.host, c.port): c for c in found}.values())


# -- item 13: malformed offers --------------------------------------------------------------------


def _without(sdp: str, prefix: str) -> str:
    return "\r\n".join(line for line in sdp.splitlines() if not line.startswith(prefix)) + "\r\n"


def malformed_bodies(sdp: str, data_only_sdp: str) -> dict[str, object]:
    video = sdp[sdp.index("m=video") :]
    return {
        "m=video 9 x": re.sub(r"m=video \d+ \S+", "m=video 9 x", sdp),
        "bad fmtp": re.sub(r"a=fmtp:(\d+) .*", r"a=fmtp:\1 apt=abc", sdp, count=1),
        "fmtp without payload": re.sub(r"a=fmtp:(\d+) .*", "a=fmtp:zz", sdp, count=1),
        "bad rtpmap": re.sub(r"a=rtpmap:(\d+) .*", r"a=rtpmap:\1 VP8/abc", sdp, count=1),
        "no fingerprint": _without(sdp, "a=fingerprint"),
        "no ICE credentials": _without(sdp, "a=ice-"),
        "ICE ufrag of 5000 characters": re.sub(r"a=ice-ufrag:\S+", "a=ice-ufrag:" + "u" * 5000, sdp),
        "no video": data_only_sdp,
        "two video sections": sdp + video[: video.index("m=application")] if "m=application" in video else sdp + video,
        "binary garbage": "".join(chr(b) for b in bytes(range(256)) * 8),
        "not SDP": "hello\r\nworld\r\n",
        "over 100 KB": sdp + "a=x-padding:" + "p" * 110_000 + "\r\n",
        "empty": "",
    }


async def test_malformed_offers_are_refused_before_anything_is_built(http, server, services, sandbox_key, blink_clip, monkeypatch, caplog):
    built = []
    real = attempts_module.LivenessAnalyzer
    monkeypatch.setattr(attempts_module, "LivenessAnalyzer", lambda *a, **k: built.append(1) or real(*a, **k))
    created, _customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"])
    config = await live_config(http, server)
    pc, _ = await peer_offer(ClipTrack(*blink_clip))
    data_pc, _ = await peer_offer(None)
    sdp, data_only = pc.localDescription.sdp, data_pc.localDescription.sdp
    await close_all([pc, data_pc])
    caplog.set_level(logging.WARNING)
    bodies: dict[str, object] = {name: {"sdp": text, "type": "offer"} for name, text in malformed_bodies(sdp, data_only).items()}
    bodies.update(
        {
            "sdp is a list": {"sdp": [sdp], "type": "offer"},
            "sdp is a number": {"sdp": 7, "type": "offer"},
            "type is an answer": {"sdp": sdp, "type": "answer"},
            "type is a dict": {"sdp": sdp, "type": {"offer": True}},
            "no sdp": {"type": "offer"},
            "body is a list": [sdp, "offer"],
            "body is not JSON": "{not json",
            "deeply nested body": "[" * 100_000 + "]" * 100_000,
        }
    )
    for name, body in bodies.items():
        status, parsed, text = await post_offer(http, server, config, body)
        assert status == 400 and parsed and parsed["error"]["code"] == "bad_offer", (name, status, text[:300])
        assert "Traceback" not in text and 'File "' not in text, name
    assert not built, "an analysis was built for a refused offer"
    assert not services.attempts.live and not services.attempts.connections
    session = services.store.session(created["id"])
    assert session.status == Status.ID_UPLOADED and session.attempts == 0
    assert not [r for r in caplog.records if r.exc_info], "a refused offer logged a traceback"
    # The session is unharmed: a proper offer still starts the check.
    proper, _ = await peer_offer(ClipTrack(*blink_clip))
    try:
        status, _, text = await post_offer(http, server, config, offer_body(proper))
        assert status == 200, text
        assert built
    finally:
        await proper.close()
    assert await eventually(lambda: not services.attempts.live and not services.attempts.connections, timeout=30)


# -- item 14: hostile data-channel messages ------------------------------------------------------


async def test_hostile_data_channel_messages_are_ignored_and_the_check_goes_on(http, server, services, sandbox_key, blink_clip):
    # The customer here shares the server's event loop: its own megabyte of SCTP sending holds up the
    # server's frames for a while, which the short test watchdogs would take for a dead stream.
    services.attempts.settings = services.attempts.settings.replace(no_frames_timeout_s=10.0, challenge_timeout_s=20.0)
    created, customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["blink", "blink"])
    run = await customer.start_live(ClipTrack(*blink_clip))
    assert run.offer_error is None, run.offer_error
    assert await eventually(lambda: bool(run.messages) and customer.channel.readyState == "open", timeout=20)
    channel = customer.channel
    channel.send("[" * 5000 + "]" * 5000)  # RecursionError bait
    channel.send('{"type": ' * 400 + '"bye"' + "}" * 400)  # small, nested and with a "bye" deep inside
    channel.send(json.dumps({"type": "bye", "padding": "x" * 200_000}))  # a bye, but oversized
    channel.send(b"\x00" * 1000)  # binary
    channel.send("\u0000" * 10)
    channel.transport._remote_max_message_size = None  # as a hostile peer would: the server's own limit is ignored
    channel.send("x" * 1_000_000)
    result = await customer.wait_result(run, timeout=60)
    await customer.close()
    data = await session_json(http, server, sandbox_key, created["id"])
    # The check went on to its decision. The customer's own megabyte, sent on the event loop it shares
    # with the server, can stall the frames of this 2 s check enough to leave it fewer frames for the
    # anti-spoofing models or the match: then a person reviews it (seen once in 1297 on CI). Either way
    # no hostile message ended, failed or decided it.
    liveness = data.get("liveness") or {}
    seen = {k: data.get(k) for k in ("status", "failure_reason", "match")} | {k: liveness.get(k) for k in ("pad", "signals", "review_because")}
    assert result is not None and result["status"] in ("approved", "review"), seen
    assert data["status"] == result["status"] and data["failure_reason"] is None and liveness.get("passed") is True, seen
    assert await eventually(lambda: not services.attempts.live and not services.attempts.connections, timeout=20)


# -- item 4: uploads starving live checks (the measurement itself is `bench --upload-loop`) ---------


async def test_the_upload_loop_measurement_runs_against_the_real_server(server, sandbox_key):
    """A smoke run of the tool: both phases measured, uploads done, none failed. The ratio is reported by
    `python -m server bench --upload-loop`, never asserted here."""
    from realname_tools.bench.options import BenchOptions
    from realname_tools.bench.upload_loop import render_upload_loop, run_upload_loop

    options = BenchOptions(
        video=str(video(BLINK_CLIP)),
        seconds=1.5,
        warmup_s=0.2,
        url=str(server.make_url("/")).rstrip("/"),
        api_key=sandbox_key,
        upload_photo=str(photo(BLINK_ID)),
        upload_loop=True,
    )
    report = await run_upload_loop(options)
    assert report["alone"]["error"] is None and report["with_uploads"]["error"] is None, report
    assert report["alone_fps"] > 0 and report["with_uploads_fps"] > 0 and report["ratio"] is not None
    assert report["uploads_done"] > 0 and report["uploads"]["failed"] == 0
    assert "ratio with/alone" in render_upload_loop(report)
