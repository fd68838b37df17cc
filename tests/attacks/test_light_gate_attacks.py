"""Attacks on the light gate (issue 23, server/liveness/light.py), each against the real server: a real
aiortc peer streams the shared blink clip, in its own light or dimmed as in a dim room
(tests/support/light.py), to the real app with the real models and a real SQLite file.

- Lit for the gate, dimmed once the challenges start (and the same after a dark start that is lit just
  long enough to open the gate): the check is not approved on the lit frames' score. The frames scored
  since the start measure the noisy face (`check_noise` above `noisy_above`) and the PAD verdict is at
  best review; the record, the webhook and the console say so.
- Dark throughout, as a stall or to probe the gate: the attempt ends `too_dark` at the start timeout,
  frees its place, counts as a failure, and retrying dark does not get round the session's attempts;
  reading the "more light" hint and leaving before the timeout is not a failure, but spends an attempt.

Outcomes only: no durations or rates are asserted.
"""

from __future__ import annotations

import json
from functools import partial

import aiohttp
import pytest

from realname_tools.client import ClipTrack, LiveRun, load_clip
from server.ratelimit import FailureLimiter
from server.sessions import Status
from tests import test_webhooks
from tests.support.console import make_operator, sign_in
from tests.support.light import LightSwitchTrack, asked_for_light, challenge_asked, dimmed
from tests.support.media import pad_model_dir, video
from tests.support.waiting import eventually
from tests.test_live_flow import BLINK_CLIP, BLINK_ID, ready_for_live, session_json

receiver = test_webhooks.receiver  # fixtures: the merchant's endpoint, and an API key with its webhook secret
merchant = test_webhooks.merchant

DARK_START_FRAMES = 24  # about a second of the clip: the gate measures the dark room and asks for light


@pytest.fixture(scope="module")
def lit_and_dim():
    pad_model_dir()
    frames, fps = load_clip(video(BLINK_CLIP), max_seconds=8.0)
    return frames, dimmed(frames), fps


def pad_signal(signals: list[dict]) -> dict:
    [found] = [s for s in signals if s["code"].startswith("pad_")]
    return found


@pytest.mark.parametrize("dark_start", [False, True], ids=["lit_then_dim", "dark_lit_for_the_gate_then_dim"])
async def test_lit_for_the_gate_then_dimmed_is_not_approved_on_the_lit_frames(http, server, services, receiver, merchant, lit_and_dim, dark_start):
    lit, dark, fps = lit_and_dim
    key, _secret = merchant
    noisy_above = services.attempts.pad.thresholds.noisy_above
    created, customer = await ready_for_live(http, server, key, BLINK_ID, fixed_challenges=["blink", "blink"], callback_url=receiver.url)
    run = LiveRun()
    # The light goes down as soon as the first challenge is asked (and, with a dark start, is up only from
    # the frame after the page asked for more light until then).
    track = LightSwitchTrack(lit, dark, fps, lambda index: challenge_asked(run) or (dark_start and not asked_for_light(run)))
    await customer.start_live(track, run=run)
    assert run.offer_error is None, run.offer_error
    result = await customer.wait_result(run, timeout=90)
    await customer.close()
    assert result is not None
    assert challenge_asked(run) and asked_for_light(run) == dark_start
    data = await session_json(http, server, key, created["id"])
    liveness, pad = data["liveness"], data["liveness"]["pad"]
    assert data["status"] != "approved", (data["status"], pad)
    # The check's own frames measured the dim room; the PAD verdict is at best review.
    assert pad["check_noise"] > noisy_above and pad["verdict"] in ("review", "attack"), pad
    signal = pad_signal(liveness["signals"])
    assert signal["detail"]["check_noise"] > signal["detail"]["thresholds"]["noisy_above"] == noisy_above
    assert signal["detail"]["thresholds"]["noisy_review"] == services.attempts.pad.thresholds.noisy_review
    if data["status"] == "review":  # the challenges passed in the dim room: a person looks, and is told why
        assert signal["code"] in liveness["review_because"]
    # The merchant's webhook carries the same figures.
    assert await eventually(lambda: receiver.requests, timeout=20)
    sent = json.loads(receiver.requests[-1]["body"])["data"]["session"]
    assert sent["status"] == data["status"] != "approved"
    assert pad_signal(sent["signals"])["detail"]["check_noise"] == signal["detail"]["check_noise"]
    # And the reviewer's console shows the PAD verdict and the signal.
    make_operator(services, "Hook Shop", "rita")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as console:
        assert await sign_in(console, server, "Hook Shop", "rita") == 303
        async with console.get(server.make_url(f"/console/sessions/{created['id']}")) as response:
            page = await response.text()
    assert response.status == 200 and f"<code>{pad['verdict']}</code>" in page and f"<code>{signal['code']}</code>" in page
    assert await eventually(lambda: not services.attempts.live)


async def test_a_dark_stream_cannot_hold_its_place_nor_retry_for_ever(http, server, services, sandbox_key, lit_and_dim):
    """The gate as a stall: a dark stream never starts its challenges. It ends `too_dark` at the start
    timeout, gives its place and scoring up, counts as a failure, and the session's attempts still run out."""
    _lit, dark, fps = lit_and_dim
    # Long enough for a first PAD score on a saturated machine (its scoring threads yield to the analysis):
    # a dark stream is `too_dark` only once a scored frame measured it.
    services.attempts.settings = services.attempts.settings.replace(start_timeout_s=8.0)
    services.attempts.failures = FailureLimiter(2, 600.0, 120.0)  # two failures pause the session and the browser
    services.lifecycle.settings = services.lifecycle.settings.replace(max_attempts=2)
    created, customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["blink"])
    for attempt in (1, 2):
        run = await customer.start_live(ClipTrack(dark[: round(2 * fps)], fps))  # two seconds of the dim room, looping
        assert run.offer_error is None, run.offer_error
        result = await customer.wait_result(run, timeout=60)
        await customer.close()
        assert result is not None, f"attempt {attempt} never ended"
        assert asked_for_light(run) and not challenge_asked(run)
        assert await eventually(lambda: not services.attempts.live)  # the place (and its PAD scoring) is free
        session = services.store.session(created["id"])
        assert session.failure_reason == "too_dark" and session.attempts == attempt
        assert result["status"] == (Status.ID_UPLOADED if attempt == 1 else Status.FAILED).value
    # The session's attempts ran out: a third dark try is not let in.
    refused = await customer.start_live(ClipTrack(dark, fps))
    assert refused.offer_error is not None and refused.offer_error["code"] == "no_live_step"
    data = await session_json(http, server, sandbox_key, created["id"])
    assert data["status"] == "failed" and data["failure_reason"] == "too_dark" and data["attempts"]["used"] == 2
    # Both counted as failures: the same browser on a new link is paused (a `not_ready` ending counts the same).
    _again, other = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["blink"])
    paused = await other.start_live(ClipTrack(dark, fps))
    assert paused.offer_error is not None and paused.offer_error["code"] == "too_many_failures", paused.offer_error
    assert not services.attempts.live


async def test_probing_the_gate_and_leaving_still_spends_the_attempts(http, server, services, sandbox_key, lit_and_dim):
    """The gate as an oracle: show a face, read whether it is asked for more light, leave before the start
    timeout, try again. Leaving is not a failure, but each probe is an attempt: they run out."""
    _lit, dark, fps = lit_and_dim
    services.lifecycle.settings = services.lifecycle.settings.replace(max_attempts=2)
    created, customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["blink"])
    for attempt in (1, 2):
        run = await customer.start_live(ClipTrack(dark[: round(2 * fps)], fps))
        assert run.offer_error is None, run.offer_error
        assert await eventually(partial(asked_for_light, run), timeout=30)  # the answer read
        await customer.bye()
        assert await eventually(lambda: not services.attempts.live, timeout=30)
        await customer.close()
        session = services.store.session(created["id"])
        assert session.failure_reason == "abandoned" and session.attempts == attempt
    assert session.status == Status.FAILED
    refused = await customer.start_live(ClipTrack(dark, fps))
    assert refused.offer_error is not None and refused.offer_error["code"] == "no_live_step"
