"""The whole customer flow over real HTTP and real WebRTC: an aiortc peer streams a real clip to the app."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from realname_tools.client import ClipTrack, HostedFlowClient, load_clip
from server.rtc.bandwidth import RECEIVE_KBPS
from server.sessions import Status
from tests.support.api import auth
from tests.support.documents import card_with_face, jpeg
from tests.support.media import pad_model_dir, photo, video
from tests.support.waiting import eventually

BLINK_CLIP = "blink_frontal_man_phone_portrait_14s.mp4"
BLINK_ID = "vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg"
OTHER_ID = "angelina_jolie/deepface_img10.jpg"
REPLAY_CLIP = "attack_monitor_replay_of_headturn_phone_selfie_21s.mp4"  # a head-turn selfie, filmed off a monitor
REPLAY_ID = "vid_tranv_selfie_man/frame_t0.5s_frontal.jpg"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def blink_clip():
    return load_clip(video(BLINK_CLIP))


async def new_session(http, server, key, **body):
    body.setdefault("reference_id", "customer-42")
    async with http.post(server.make_url("/api/v1/sessions"), json=body, headers=auth(key)) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def ready_for_live(http, server, key, id_photo: str, **body) -> tuple[dict, HostedFlowClient]:
    created = await new_session(http, server, key, **body)
    customer = HostedFlowClient(http, str(server.make_url("/")))
    assert await customer.open(created["url"]) == 303
    assert await customer.consent() == 303
    status, page = await customer.upload_document(photo(id_photo).read_bytes())
    assert status == 303, page
    return created, customer


async def session_json(http, server, key, session_id):
    async with http.get(server.make_url(f"/api/v1/sessions/{session_id}"), headers=auth(key)) as response:
        return await response.json()


async def test_same_person_is_approved(http, server, services, sandbox_key, blink_clip):
    created, customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["blink", "blink"])
    frames, fps = blink_clip
    run = await customer.start_live(ClipTrack(frames, fps))
    assert run.offer_error is None
    result = await customer.wait_result(run, timeout=30)
    await customer.close()
    assert result is not None and result["status"] == "approved"
    kinds = [m.get("challenge") for m in run.messages if m["type"] == "prompt" and m["phase"] == "challenge"]
    assert kinds and set(kinds) == {"blink"}
    data = await session_json(http, server, sandbox_key, created["id"])
    assert data["status"] == "approved" and data["decision"] == "approved"
    assert data["match"]["decision"] == "match" and data["match"]["score"] > data["match"]["threshold"]
    assert [c["passed"] for c in data["liveness"]["challenges"]] == [True, True]
    stats = data["live_stats"]
    # Frames arrived and were analysed (how many a second is the benchmark's business, not a test's).
    assert stats["frames_received"] > 0 and stats["frames_analysed"] > 0 and stats["received_kbps"] > 0
    # The decision's time and its parts, which add up to it (no duration is asserted: the machine may be busy).
    parts = stats["decision_parts_ms"]
    assert {"analysis", "to_outcome", "pad", "faces", "decide"} <= set(parts) and all(v >= 0 for k, v in parts.items() if k != "decide")
    assert sum(parts.values()) == pytest.approx(stats["decision_ms"], abs=0.5)  # rounding of each part
    # The answer asked for no more than the analysis needs.
    video = run.answer_sdp[run.answer_sdp.index("m=video") :].split("m=application")[0]
    assert f"b=AS:{RECEIVE_KBPS}\r\n" in video
    assert await eventually(lambda: not services.attempts.live)
    kinds = services.store.evidence_kinds(created["id"])
    assert "reference_face" in kinds and "live_face_0" in kinds and "live_embedding" in kinds


async def test_another_persons_id_is_rejected(http, server, sandbox_key, blink_clip):
    created, customer = await ready_for_live(http, server, sandbox_key, OTHER_ID, fixed_challenges=["blink"])
    run = await customer.start_live(ClipTrack(*blink_clip))
    result = await customer.wait_result(run, timeout=30)
    await customer.close()
    assert result is not None and result["status"] == "rejected"
    data = await session_json(http, server, sandbox_key, created["id"])
    assert data["decision"] == "rejected" and data["failure_reason"] == "face_mismatch"
    assert data["match"]["decision"] == "no_match"


async def test_bye_frees_the_peer_connection_at_once_and_gives_the_attempt_back(http, server, services, sandbox_key, blink_clip):
    created, customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"])
    run = await customer.start_live(ClipTrack(*blink_clip))
    assert await eventually(lambda: len(run.messages) > 0, timeout=30)
    assert created["id"] in services.attempts.live
    await customer.bye()
    assert await eventually(lambda: not services.attempts.live, timeout=30)
    await customer.close()
    # Freed by the bye itself: a dropped connection would have ended as connection_lost.
    session = services.store.session(created["id"])
    assert session.status == Status.ID_UPLOADED and session.failure_reason == "abandoned"
    assert session.attempts == 1 and session.attempts_left == 2


class StallingTrack(ClipTrack):
    """Sends a few frames and then nothing, like a phone whose page was killed without saying bye."""

    def __init__(self, frames, fps, stop_after: int) -> None:
        super().__init__(frames, fps)
        self.stop_after = stop_after

    async def recv(self):
        if self.sent >= self.stop_after:
            await asyncio.Event().wait()
        return await super().recv()


async def test_no_frames_watchdog_frees_a_silent_peer(http, server, services, sandbox_key, blink_clip):
    created, customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"])
    frames, fps = blink_clip
    await customer.start_live(StallingTrack(frames, fps, stop_after=15))
    assert await eventually(lambda: created["id"] in services.attempts.live, timeout=30)
    # settings.no_frames_timeout_s is 2 s in tests.
    assert await eventually(lambda: not services.attempts.live, timeout=30)  # the reason below says which ended it
    await customer.close()
    assert services.store.session(created["id"]).failure_reason == "connection_lost"


async def test_a_second_check_waits_in_line_and_is_admitted_when_the_first_ends(http, server, services, sandbox_key, blink_clip):
    services.attempts.settings = services.attempts.settings.replace(max_live_sessions=1)
    first, one = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"])
    run = await one.start_live(ClipTrack(*blink_clip))
    assert run.offer_error is None

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other_browser:
        second, two = await ready_for_live(other_browser, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"])
        waiting = await two.start_live(ClipTrack(*blink_clip))
        assert waiting.offer_error["status"] == 503 and waiting.offer_error["code"] == "busy"
        queue = waiting.offer_error["queue"]
        assert queue["position"] == 1 and queue["wait_s"] > 0 and queue["retry_after_s"] > 0
        async with http.get(server.make_url("/healthz/details")) as response:
            capacity = (await response.json())["capacity"]
        assert capacity["live_checks"] == 1 and capacity["waiting"] == 1 and capacity["capacity_sessions"] == 1
        assert capacity["cpu_ms_per_frame"] > 0 and capacity["cost_source"] in ("synthetic", "live")
        # Still full: asking again keeps the place and costs no attempt.
        again = await two.start_live(ClipTrack(*blink_clip))
        assert again.offer_error["queue"]["position"] == 1
        assert services.store.session(second["id"]).attempts == 0
        await one.bye()
        await one.close()
        assert await eventually(lambda: first["id"] not in services.attempts.live)
        admitted = await two.start_live(ClipTrack(*blink_clip))
        assert admitted.offer_error is None
        assert await eventually(lambda: second["id"] in services.attempts.live)
        await two.bye()
        await two.close()
    assert await eventually(lambda: not services.attempts.live)
    data = await session_json(http, server, sandbox_key, second["id"])
    actions = [e["action"] for e in data["events"]]
    assert actions.count("live.queued") == 1 and "live.admitted" in actions
    assert actions.index("live.queued") < actions.index("live.admitted") < actions.index("live.started")
    assert data["attempts"]["used"] == 1  # the waiting cost nothing: one attempt, the admitted one


async def healthz_capacity(http, server) -> dict:
    async with http.get(server.make_url("/healthz/details")) as response:
        return (await response.json())["capacity"]


async def test_customers_who_left_the_line_cannot_keep_a_free_place_from_one_who_waits(http, server, services, sandbox_key, blink_clip, monkeypatch):
    import aiohttp

    # However slowly a busy machine runs this test, those who left stay in line, ahead (their places
    # would otherwise be forgotten after about two missed asks, and the test would prove less).
    monkeypatch.setattr("server.flow.admission.KEEP_PLACE_S", 600.0)
    # The first check stays live (the clip never turns left) however slowly the others are set up.
    services.attempts.settings = services.attempts.settings.replace(max_live_sessions=1, challenge_timeout_s=600.0, start_timeout_s=600.0)
    first, one = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"], reference_id="first")
    assert (await one.start_live(ClipTrack(*blink_clip))).offer_error is None
    browsers = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(7)]
    try:
        # Six customers are told to wait and leave: two close the page (its beacon says so), four go
        # without a word (the tab killed, a "try again" at the shop that made a new session elsewhere).
        for i, browser in enumerate(browsers[:6]):
            _, gone = await ready_for_live(browser, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"], reference_id=f"gone-{i}")
            refused = await gone.start_live(ClipTrack(*blink_clip))
            assert refused.offer_error["code"] == "busy"
            if i < 2:
                assert await gone.leave() == 204
            await gone.close()
        assert (await healthz_capacity(http, server))["waiting"] == 4
        # A present customer joins behind the four and asks again on schedule, as the waiting page does.
        second, present = await ready_for_live(browsers[6], server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"], reference_id="present")
        waiting = await present.start_live(ClipTrack(*blink_clip))
        # Its place shown counts those ahead still asking on schedule: none of them will again.
        assert waiting.offer_error["code"] == "busy" and 1 <= waiting.offer_error["queue"]["position"] <= 5
        again = await present.start_live(ClipTrack(*blink_clip))
        assert again.offer_error["code"] == "busy"
        capacity = await healthz_capacity(http, server)
        assert capacity["waiting"] == 5 and 1 <= capacity["waiting_present"] <= 5
        assert [p.session_id for p in services.attempts.admission.line][-1] == second["id"]  # four ahead of it
        # The place frees: the present customer gets it at its next ask, whoever the line still holds.
        await one.bye()
        await one.close()
        assert await eventually(lambda: first["id"] not in services.attempts.live, timeout=20)
        admitted = await present.start_live(ClipTrack(*blink_clip))
        assert admitted.offer_error is None
        assert await eventually(lambda: second["id"] in services.attempts.live)
        await present.bye()
        await present.close()
    finally:
        for browser in browsers:
            await browser.close()
    assert await eventually(lambda: not services.attempts.live, timeout=20)


async def test_the_page_s_beacon_gives_up_its_own_place_in_line_and_no_one_else_s(http, server, services, sandbox_key, blink_clip):
    import aiohttp

    # The first check stays live (the clip never turns left) however slowly the others are set up.
    services.attempts.settings = services.attempts.settings.replace(max_live_sessions=1, challenge_timeout_s=600.0, start_timeout_s=600.0)
    first, one = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"], reference_id="first")
    assert (await one.start_live(ClipTrack(*blink_clip))).offer_error is None
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as waiter_browser, aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as stranger_browser:
        waiter_session, waiter = await ready_for_live(waiter_browser, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"], reference_id="waiter")
        assert (await waiter.start_live(ClipTrack(*blink_clip))).offer_error["code"] == "busy"
        stranger_session, stranger = await ready_for_live(stranger_browser, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"], reference_id="stranger")
        assert (await stranger.start_live(ClipTrack(*blink_clip))).offer_error["code"] == "busy"
        assert [p.session_id for p in services.attempts.admission.line] == [waiter_session["id"], stranger_session["id"]]
        # Another browser's beacon, with its own valid token, gives up its own place only.
        assert await stranger.leave() == 204
        assert [p.session_id for p in services.attempts.admission.line] == [waiter_session["id"]]
        # The waiter's cookie without its token (a cross-site form), or with another browser's token: refused.
        assert await waiter.leave(csrf="0" * 64) == 204
        assert await waiter.leave(csrf=stranger.live_config["csrf"]) == 204
        async with aiohttp.ClientSession() as no_cookie:
            async with no_cookie.post(server.make_url("/verify/live/bye"), data={"csrf_token": waiter.live_config["csrf"]}) as response:
                assert response.status == 204
        assert [p.session_id for p in services.attempts.admission.line] == [waiter_session["id"]]
        # Its own page's beacon: the place is given up at once, and the live check goes on.
        assert await waiter.leave() == 204
        assert services.attempts.admission.line == [] and first["id"] in services.attempts.live
        assert (await healthz_capacity(http, server))["waiting"] == 0
    await one.bye()
    await one.close()
    assert await eventually(lambda: not services.attempts.live, timeout=20)


async def test_failed_attempts_run_out(http, server, services, sandbox_key, blink_clip):
    services.attempts.settings = services.attempts.settings.replace(challenge_timeout_s=1.0)
    created, customer = await ready_for_live(http, server, sandbox_key, BLINK_ID, fixed_challenges=["turn_left"])
    session_id = created["id"]
    for attempt in range(1, 4):
        run = await customer.start_live(ClipTrack(*blink_clip))
        assert run.offer_error is None, run.offer_error
        result = await customer.wait_result(run, timeout=60)
        await customer.close()
        assert result is not None
        session = services.store.session(session_id)
        assert session.attempts == attempt and session.failure_reason == "timeout"
    assert session.status == Status.FAILED
    refused = await customer.start_live(ClipTrack(*blink_clip))
    assert refused.offer_error["code"] == "no_live_step" and refused.offer_error["page"] == "/verify/result"


async def test_a_virtual_camera_is_refused_for_live_keys(http, server, services, live_key, blink_clip):
    created, customer = await ready_for_live(http, server, live_key, BLINK_ID)
    run = await customer.start_live(ClipTrack(*blink_clip), camera_label="OBS Virtual Camera")
    assert run.offer_error["status"] == 403 and run.offer_error["code"] == "virtual_camera"
    session = services.store.session(created["id"])
    assert session.status == Status.ID_UPLOADED and session.attempts == 0


# -- the ID document on the reference photo ------------------------------------------------------------


async def checked_with_card(http, server, services, key, clip, card, **body) -> dict:
    """A live check (two blinks) against a generated card carrying the clip's person's face; the session's record."""
    created = await new_session(http, server, key, fixed_challenges=["blink", "blink"], callback_url="http://127.0.0.1:9/hook", **body)
    customer = HostedFlowClient(http, str(server.make_url("/")))
    assert await customer.open(created["url"]) == 303
    assert await customer.consent() == 303
    status, page = await customer.upload_document(jpeg(card.image))
    assert status == 303, page
    run = await customer.start_live(ClipTrack(*clip))
    result = await customer.wait_result(run, timeout=30)
    await customer.close()
    assert result is not None
    return await session_json(http, server, key, created["id"])


@pytest.mark.reads_documents
async def test_a_genuine_card_is_approved_and_the_webhook_carries_the_document(http, server, services, models, sandbox_key, blink_clip):
    card = card_with_face(models, photo(BLINK_ID), seed=5)
    expected = {"name": card.truth["name"], "id_number": card.truth["id_number"], "date_of_birth": card.truth["date_of_birth"]}
    data = await checked_with_card(http, server, services, sandbox_key, blink_clip, card, expected=expected)
    assert data["status"] == "approved" and data["failure_reason"] is None, data["match"]
    (event,) = services.store.webhook_events_for(data["id"])
    document = json.loads(event["body"])["data"]["session"]["document"]
    assert document["type"] == "cn_resident_card_front" and document["checks_passed"] is True
    assert document["expected_matches"] == {"name": True, "id_number": True, "date_of_birth": True}
    assert document["fields"]["id_number"]["value"] == card.truth["id_number"]


@pytest.mark.reads_documents
async def test_a_card_failing_its_checksum_gets_the_configured_outcome(http, server, services, models, sandbox_key, blink_clip):
    card = card_with_face(models, photo(BLINK_ID), seed=6, bad_checksum=True)
    data = await checked_with_card(http, server, services, sandbox_key, blink_clip, card)
    assert data["status"] == "review" and data["failure_reason"] == "document_checksum_failed"
    assert data["match"]["decision"] == "match"  # the face matched: the document alone decided
    services.lifecycle.settings = services.lifecycle.settings.replace(document_outcome="rejected")
    data = await checked_with_card(http, server, services, sandbox_key, blink_clip, card, expected={"name": "someone else"})
    assert data["status"] == "rejected" and data["failure_reason"] == "document_checksum_failed"
    assert data["document"]["expected_matches"] == {"name": False}


async def test_a_started_service_loads_and_times_its_models_before_it_says_it_is_ready(aiohttp_server, models, settings):
    """Issue 31 item 6: the first customer's offer no longer waits for the landmarker to load and be timed."""
    from server.app import create_app
    from server.flow.cputime import analysis_workers
    from server.http.services import SERVICES

    server = await aiohttp_server(create_app(settings, models=models, warm=True))
    attempts = server.app[SERVICES].attempts
    said: list[bool] = []

    async def poll() -> None:
        async with aiohttp.ClientSession() as http:
            while not said or not said[-1]:
                async with http.get(server.make_url("/healthz")) as response:
                    said.append((await response.json())["ready"])
                await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout=300)
    assert said[-1] is True and attempts.ready
    assert attempts.landmarkers.size == analysis_workers(settings)  # one graph per analysis thread, loaded at start
    assert attempts.capacity()["cost_source"] == "synthetic"  # the first estimate, made before any check
    assert not attempts.live


# -- passive anti-spoofing through the check -------------------------------------------------------------


async def test_a_replay_that_fails_its_challenge_ends_as_a_presentation_attack_and_is_not_coached(http, server, services, sandbox_key):
    """PAD scores frames while the check goes on: a screen replay asked to smile (the clip never does)
    fails its challenge, yet the attempt ends as `presentation_attack` with its PAD figures and signal,
    and the result page gives no hint of what went wrong."""
    pad_model_dir()
    services.attempts.settings = services.attempts.settings.replace(challenge_timeout_s=4.0)
    created, customer = await ready_for_live(http, server, sandbox_key, REPLAY_ID, fixed_challenges=["smile"])
    run = await customer.start_live(ClipTrack(*load_clip(video(REPLAY_CLIP))))
    assert run.offer_error is None, run.offer_error
    result = await customer.wait_result(run, timeout=60)
    await customer.close()
    assert result is not None and result["status"] == "id_uploaded"
    data = await session_json(http, server, sandbox_key, created["id"])
    assert data["failure_reason"] == "presentation_attack", data["liveness"]
    liveness = data["liveness"]
    # The challenge did fail; what it failed with is kept as the detail, for the merchant and the console.
    assert [c["passed"] for c in liveness["challenges"]] == [False]
    assert liveness["reason"] == "presentation_attack" and liveness["detail"] not in (None, "presentation_attack")
    pad = liveness["pad"]
    assert pad["verdict"] == "attack" and pad["frames_scored"] >= 3 and pad["score"] < pad_threshold(services)
    assert len(pad["scores"]) == pad["frames_scored"]
    (signal,) = [s for s in liveness["signals"] if s["code"] == "pad_attack"]
    assert signal["action"] == "fail" and signal["detail"]["frames"] == pad["frames_scored"]
    # The customer is told it did not succeed, not why.
    async with http.get(server.make_url("/verify/result")) as response:
        page = await response.text()
    assert response.status == 200 and 'id="result"' in page
    en = json.loads((ROOT / "server/web/locales/en.json").read_text(encoding="utf-8"))
    assert en["reason.presentation_attack"] not in page and en[f"reason.{liveness['detail']}"] not in page
    assert en["result.retry_hint_plain"].split(" You")[0] in page
    assert await eventually(lambda: not services.attempts.live)
    assert not any(k.startswith("scene_") for k in services.store.evidence_kinds(created["id"]))


def pad_threshold(services) -> float:
    return services.attempts.pad.thresholds.attack
