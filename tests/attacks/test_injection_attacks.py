"""Injection attacks (issue 24): streams that never saw a camera, against the real server on a live key.

The scripted peer is our own aiortc client (realname_tools/client.py) sending a Chrome User-Agent and a
camera named "Integrated Camera", and playing footage of the ID's owner that fits the prompts (the
session's challenges are fixed to blinks so that the footage fits: the attacker of the issue played the
matching clip as each prompt arrived). Before the offer was fingerprinted it was approved; now the check
fails on a live key, with and without jitter on its timestamps, and a sandbox key still lets the same
client through with the signal recorded (merchants' integration tests use it). The same client with
its offer disguised as Chrome's gets past the offer check, and is failed by reference_replay when its
stream is the footage the ID photo came from, and by rigid_texture when it streams a mesh-warped puppet
of another photo of the ID's owner (a photo found online: not the ID photo, so reference_replay is silent).
"""

from __future__ import annotations

import random
import re

import aiohttp
import pytest

from realname_tools.client import ClipTrack, HostedFlowClient, load_clip
from realname_tools.reactive_splices import ReactivePlayer, ReactiveTrack
from server.liveness.challenges import parse_challenges
from server.sessions import Status
from tests.support.media import photo, video
from tests.support.waiting import eventually
from tests.test_live_flow import BLINK_CLIP, BLINK_ID, new_session, session_json

CHROME_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
# A puppet made from one press photo of the person; the ID photo is another (realname_tools/eval_injection.py's
# OTHER_PHOTO_PUPPETS: approved before rigid_texture).
PUPPET_SOURCE, PUPPET_ID = "matt_damon/deepface_img32.jpg", "matt_damon/deepface_img30.jpg"
PUPPET_CHALLENGES = ["turn_left", "turn_right"]


@pytest.fixture(scope="module")
def blink_clip():
    return load_clip(video(BLINK_CLIP))


@pytest.fixture(scope="module")
def puppet_clip(mesh_puppets):
    return load_clip(mesh_puppets(PUPPET_SOURCE, PUPPET_CHALLENGES))


class JitteredTrack(ClipTrack):
    """The clip with Gaussian jitter on each frame's timestamp, as a camera's clock would have."""

    def __init__(self, frames, fps, jitter_s: float) -> None:
        super().__init__(frames, fps)
        self.jitter_s = jitter_s
        self.random = random.Random(7)

    async def recv(self):
        frame = await super().recv()
        frame.pts = max(0, frame.pts + int(self.random.gauss(0.0, self.jitter_s) * 90000))
        return frame


def disguised_as_chrome(sdp: str) -> str:
    """aiortc's offer edited to read like Chromium's: its o= line, trickle ICE, transport-wide congestion
    control offered (a browser's offer text is easy to copy; what the client then sends is its own)."""
    sdp = re.sub(r"o=- \d+ \d+ IN IP4 0\.0\.0\.0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", sdp)
    sdp = sdp.replace("a=setup:actpass\r\n", "a=setup:actpass\r\na=ice-options:trickle\r\n")
    video = re.search(r"m=video \d+ \S+ (\d+)", sdp)
    assert video is not None
    first = video.group(1)
    extra = f"a=extmap:4 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\na=rtcp-fb:{first} transport-cc\r\n"
    return sdp.replace(f"a=rtpmap:{first} ", extra + f"a=rtpmap:{first} ", 1)


async def scripted_check(server, services, key: str, track, rewrite_offer=None, challenges=("blink", "blink"), id_photo=BLINK_ID) -> dict:
    """The whole flow as the scripted peer, claiming to be Chrome; the session's record."""
    services.lifecycle.challenges_for = lambda session: parse_challenges(list(challenges))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"User-Agent": CHROME_UA}) as http:
        created = await new_session(http, server, key)
        customer = HostedFlowClient(http, str(server.make_url("/")))
        assert await customer.open(created["url"]) == 303
        assert await customer.consent() == 303
        status, page = await customer.upload_document(photo(id_photo).read_bytes())
        assert status == 303, page
        run = await customer.start_live(track, camera_label="Integrated Camera", rewrite_offer=rewrite_offer)
        assert run.offer_error is None, run.offer_error
        result = await customer.wait_result(run, timeout=60)
        await customer.close()
        assert result is not None
        data = await session_json(http, server, key, created["id"])
    assert await eventually(lambda: not services.attempts.live, timeout=20)
    return data


def signal(data: dict, code: str) -> dict | None:
    return next((s for s in (data.get("liveness") or {}).get("signals", []) if s["code"] == code), None)


@pytest.mark.parametrize("jitter_s", [0.0, 0.002], ids=["steady", "jittered"])
async def test_a_scripted_peer_claiming_a_camera_is_not_approved_on_a_live_key(server, services, live_key, blink_clip, jitter_s):
    data = await scripted_check(server, services, live_key, JitteredTrack(*blink_clip, jitter_s=jitter_s))
    found = signal(data, "client_not_browser")
    seen = {k: data.get(k) for k in ("status", "failure_reason")} | {"signals": (data.get("liveness") or {}).get("signals")}
    assert data["status"] != "approved" and data["decision"] != "approved", seen
    assert found is not None and found["action"] == "fail" and found["level"] == "high", seen
    assert found["detail"]["offer"]["family"] == "aiortc" and found["detail"]["user_agent"] == "Chrome/131"
    assert data["failure_reason"] == "presentation_attack" and data["liveness"]["passed"] is False, seen
    assert "client_not_browser" in data["liveness"]["detail"]
    # The page always reports its track's settings; the script sent none.
    assert signal(data, "settings_mismatch") is not None
    assert services.store.session(data["id"]).status in (Status.ID_UPLOADED, Status.FAILED)


async def test_a_sandbox_key_flags_the_scripted_peer_and_lets_it_through(server, services, sandbox_key, blink_clip):
    data = await scripted_check(server, services, sandbox_key, ClipTrack(*blink_clip))
    found = signal(data, "client_not_browser")
    assert data["status"] == "approved", (data["failure_reason"], data.get("liveness"))
    assert found is not None and found["action"] == "fail" and data["liveness"].get("review_because") is None


async def test_a_disguised_client_replaying_the_id_portraits_own_footage_fails_by_reference_replay(server, services, live_key, blink_clip):
    """The offer forged to read like Chrome's gets past client_not_browser; the stream is the footage the
    ID photo was cut from (the same light, the same texture as the portrait): reference_replay fails it."""
    data = await scripted_check(server, services, live_key, JitteredTrack(*blink_clip, jitter_s=0.002), rewrite_offer=disguised_as_chrome)
    seen = {k: data.get(k) for k in ("status", "failure_reason")} | {"signals": (data.get("liveness") or {}).get("signals")}
    assert signal(data, "client_not_browser") is None, seen
    found = signal(data, "reference_replay")
    assert found is not None and found["action"] == "fail", seen
    assert found["detail"]["identity"] >= 0.85 and found["detail"]["appearance"] >= 0.7
    assert data["status"] != "approved" and data["failure_reason"] == "presentation_attack", seen
    assert "reference_replay" in data["liveness"]["detail"]


async def test_a_disguised_client_streaming_a_puppet_of_another_photo_fails_by_rigid_texture(server, services, live_key, puppet_clip):
    """The puppet turns as asked and matches the ID photo, which it was not made from: PAD and
    reference_replay see nothing; its face turns with its texture unchanged, a photo warped."""
    track = JitteredTrack(*puppet_clip, jitter_s=0.002)
    data = await scripted_check(server, services, live_key, track, disguised_as_chrome, PUPPET_CHALLENGES, PUPPET_ID)
    seen = {k: data.get(k) for k in ("status", "failure_reason")} | {"signals": (data.get("liveness") or {}).get("signals")}
    assert signal(data, "client_not_browser") is None and signal(data, "reference_replay") is None, seen
    found = signal(data, "rigid_texture")
    assert found is not None and found["action"] == "fail" and found["level"] == "high", seen
    assert found["detail"]["texture_change"] < found["detail"]["below"] and found["detail"]["frames"] >= 2
    assert data["status"] != "approved" and data["failure_reason"] == "presentation_attack", seen
    assert "rigid_texture" in data["liveness"]["detail"]


async def test_a_disguised_client_playing_spliced_footage_on_prompt_fails_by_stream_discontinuity(server, services, live_key):
    """The attacker of the issue: footage of the person at rest, looped, and on each prompt the piece that
    performs it (realname_tools/reactive_splices.py), the offer forged to read like Chrome's. Each switch
    is a cut between the prompt and the movement: two or more fail the check."""
    pieces = [(video(BLINK_CLIP), 0.6, 1.6), (video(BLINK_CLIP), 9.0, 9.8), (video(BLINK_CLIP), 3.2, 4.0)]
    track = ReactiveTrack(ReactivePlayer.of(pieces, kbps=0), challenges=2)
    data = await scripted_check(server, services, live_key, track, disguised_as_chrome)
    seen = {k: data.get(k) for k in ("status", "failure_reason")} | {"signals": (data.get("liveness") or {}).get("signals")}
    assert signal(data, "client_not_browser") is None, seen
    assert [r.asked_at is not None for r in track.log.records] == [True, True], "both prompts were heard and answered"
    found = signal(data, "stream_discontinuity")
    assert found is not None and found["action"] == "fail" and found["detail"]["during_challenges"] >= 2, seen
    assert data["status"] != "approved" and data["failure_reason"] == "presentation_attack", seen
